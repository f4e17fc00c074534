"""The models: dense encoder, BM25 sparse encoder, token chunker and reranker."""
