"""The bottom layer: settings, limits, the error table, worker threads."""
