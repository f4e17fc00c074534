"""Knowledge side-car: hybrid retrieval over Qdrant, served over gRPC and HTTP."""

__version__ = "0.1.0"
