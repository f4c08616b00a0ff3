"""Monitoring on the desktop, without Qt: samples from servers (stream, local sampler) and their history."""
