"""Monitoring on the desktop, without Qt: samples from servers (sources, stream, local sampler), the
live window (buffer), their history, and the rules the views show (thresholds, markers, exports)."""
