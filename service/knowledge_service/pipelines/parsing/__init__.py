"""Turning uploaded files into documents, in worker processes within limits."""
