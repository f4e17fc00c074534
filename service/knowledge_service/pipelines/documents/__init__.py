"""The document pipeline: ingest, delete, reads, and the settling and sweeping of writes."""
