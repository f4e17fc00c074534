"""The request and response models both front doors speak (HTTP JSON and gRPC use the same names)."""
