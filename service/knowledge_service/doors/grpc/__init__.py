"""The gRPC front door (knowledge.v1.KnowledgeService)."""
