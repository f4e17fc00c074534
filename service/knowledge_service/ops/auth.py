"""API keys: who may call, on which namespaces, in which roles.

Keys are configured hashed (SHA-256 hex of the key), never in clear, from a mounted JSON file
(``KNOWLEDGE_API_KEYS_FILE``) and/or ``KNOWLEDGE_API_KEYS`` (the same JSON)::

    [{"name": "crew-handbook", "sha256": "<64 hex>", "namespaces": ["handbook"], "roles": ["search"]},
     {"name": "ops", "sha256": "<64 hex>", "namespaces": ["*"], "roles": ["search", "ingest", "admin"]}]

Roles: ``search`` (search, get, count, read profiles), ``ingest`` (ingest documents and files),
``admin`` (deletes, profile changes, namespace settings, evaluations). With
``KNOWLEDGE_RATE_LIMIT_PER_KEY`` > 0 each key gets a token bucket (that many requests per second,
bursts of ``KNOWLEDGE_RATE_LIMIT_BURST``); beyond it, 429 with a retry-after hint. Profiles are shared by
every namespace, so changing one needs ``admin`` on ``"*"``. A presented key is hashed and
compared with every configured hash in constant time. Keys are sent as ``Authorization: Bearer``
(HTTP) or ``authorization: Bearer`` metadata (gRPC). With no key configured and
``KNOWLEDGE_AUTH_REQUIRED`` false (the embedded default), calls are not checked.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from knowledge_service.core.config import Settings
from knowledge_service.core.errors import Overloaded, PermissionDenied, Unauthenticated

Role = Literal["search", "ingest", "admin"]
ALL = "*"


class ApiKey(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    namespaces: list[str] = Field(min_length=1)
    roles: set[Role] = Field(min_length=1)


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class TokenBucket:
    """``rate`` requests per second with bursts up to ``burst``."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.stamp = float(burst), time.monotonic()

    def take(self) -> float:
        """0 when a request may go now, else the seconds until it may."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class KeyRing:
    """The configured keys: ``admit`` authenticates a presented key and checks its role and rate,
    ``check_namespace`` its namespaces (see doors/access.py for which call needs what)."""

    def __init__(self, keys: list[ApiKey], *, required: bool, rate: float = 0.0, burst: int = 1) -> None:
        if required and not keys:
            raise ValueError(
                "KNOWLEDGE_AUTH_REQUIRED is set but no API key is configured "
                "(KNOWLEDGE_API_KEYS_FILE or KNOWLEDGE_API_KEYS)"
            )
        self.keys = keys
        self.enabled = bool(keys) or required
        self._rate, self._burst = rate, max(burst, 1)
        self._buckets: dict[str, TokenBucket] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        keys: list[ApiKey] = []
        sources = [("KNOWLEDGE_API_KEYS", settings.api_keys) if settings.api_keys else None]
        if settings.api_keys_file:
            try:
                sources.append((str(settings.api_keys_file), Path(settings.api_keys_file).read_text()))
            except OSError as exc:
                raise ValueError(
                    f"KNOWLEDGE_API_KEYS_FILE {settings.api_keys_file} cannot be read ({exc.strerror}); "
                    "mount the keys file there"
                ) from None
        for source in filter(None, sources):
            try:
                keys += TypeAdapter(list[ApiKey]).validate_python(json.loads(source[1]))
            except (json.JSONDecodeError, ValidationError) as exc:
                raise ValueError(f"API keys in {source[0]} are invalid: {exc}") from None
        return cls(
            keys,
            required=settings.auth_required,
            rate=settings.rate_limit_per_key,
            burst=settings.rate_limit_burst,
        )

    def authenticate(self, authorization: str | None) -> ApiKey | None:
        """The key behind an ``Authorization`` value; None when auth is off."""
        if not self.enabled:
            return None
        scheme, _, raw = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            raise Unauthenticated("missing API key: send 'Authorization: Bearer <key>'")
        presented = hash_key(raw.strip())
        found = None
        for key in self.keys:  # compare with every key, in constant time each
            if hmac.compare_digest(presented, key.sha256):
                found = key
        if found is None:
            raise Unauthenticated("unknown API key")
        return found

    def admit(self, authorization: str | None, role: Role | None) -> ApiKey | None:
        """The caller's key, once it holds ``role`` (None: any valid key) and is within its rate.

        Returns None when auth is off. Raises Unauthenticated, PermissionDenied or Overloaded.
        """
        key = self.authenticate(authorization)
        if key is None:
            return None
        if role is not None and role not in key.roles:
            raise PermissionDenied(f"key {key.name!r} lacks the {role!r} role")
        if self._rate > 0:
            bucket = self._buckets.setdefault(key.name, TokenBucket(self._rate, self._burst))
            if wait := bucket.take():
                raise Overloaded(
                    f"key {key.name!r} is over its rate limit of {self._rate:g} requests/s; "
                    f"retry after {wait:.2f} s",
                    retry_after_s=wait,
                )
        return key

    @staticmethod
    def check_namespace(key: ApiKey | None, namespace: str) -> None:
        """Raise unless ``key`` may act on ``namespace`` ("*": on every namespace)."""
        if key is None or ALL in key.namespaces or namespace in key.namespaces:
            return
        where = "every namespace" if namespace == ALL else f"namespace {namespace!r}"
        raise PermissionDenied(f"key {key.name!r} is not allowed on {where}")
