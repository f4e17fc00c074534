"""Offline tooling: the evaluation runner, the benchmark and the HTML report (never on a request path)."""
