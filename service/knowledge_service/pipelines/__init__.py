"""The pipelines: search, documents (ingest, delete), parsing, profiles, evaluation, health."""
