"""Operations: API keys, admission control, metrics, tracing and logs."""
