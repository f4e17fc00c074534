"""The HTTP front door (FastAPI), mirroring the gRPC service one to one."""
