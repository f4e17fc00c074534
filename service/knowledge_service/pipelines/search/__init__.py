"""The search pipeline: plan, engine query, live filter, rerank, pack, cache."""
