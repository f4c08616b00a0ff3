"""The Audit view and the PDF report."""
