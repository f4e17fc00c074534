"""HTTP transports over httpx: one connection pool per transport, shared by every call.

``httpx.Client`` is thread-safe, so one :class:`HttpTransport` serves any number of threads. Pass
your own ``httpx.Client`` / ``httpx.AsyncClient`` (e.g. with ``httpx.MockTransport``, TLS or
proxy settings) as ``client``. HTTP has no streaming ingest: ``IngestStream`` sends each batch as
one ``Ingest`` request and concatenates the outcomes.

Every request carries its deadline as ``x-request-timeout-ms``: what is left of the call's
deadline for this attempt (or batch), in whole milliseconds, as gRPC carries ``grpc-timeout``; the
service cuts the stages of a search that would overrun it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterable, Iterable
from typing import Any
from urllib.parse import quote

import httpx

from ._exceptions import DeadlineExceeded, InvalidRequest, KnowledgeError, Unavailable, from_http
from ._tracecontext import trace_headers

Body = dict[str, Any]

DEADLINE_HEADER = "x-request-timeout-ms"

# The service's rule for namespace and profile names, which travel in the URL path.
NAMESPACE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def base_url(target: str) -> str:
    """``"127.0.0.1:8080"`` -> ``"http://127.0.0.1:8080"``; a URL is kept (trailing ``/`` dropped)."""
    target = target.rstrip("/")
    return target if "://" in target else f"http://{target}"


# RPC name -> (HTTP verb, path); path parameters come out of the body, the rest is the JSON body.
ROUTES = {
    "Search": ("POST", "/v1/namespaces/{namespace}/search"),
    "Ingest": ("POST", "/v1/namespaces/{namespace}/documents"),
    "DeleteDocuments": ("POST", "/v1/namespaces/{namespace}/documents:delete"),
    "GetDocument": ("GET", "/v1/namespaces/{namespace}/documents/{doc_id}"),
    "CountDocuments": ("GET", "/v1/namespaces/{namespace}/count"),
    "ListProfiles": ("GET", "/v1/profiles"),
    "GetProfile": ("GET", "/v1/profiles/{name}"),
    "PutProfile": ("PUT", "/v1/profiles/{name}"),
    "ListProfileVersions": ("GET", "/v1/profiles/{name}/versions"),
    "RollbackProfile": ("POST", "/v1/profiles/{name}/rollback"),
    "GetNamespaceSettings": ("GET", "/v1/namespaces/{namespace}/settings"),
    "SetNamespaceSettings": ("PUT", "/v1/namespaces/{namespace}/settings"),
}


def _path_param(name: str, value: Any) -> str:
    """A path parameter, checked first: a bad one would otherwise reach another route (404)."""
    if name == "doc_id":
        if not isinstance(value, str) or not value:
            raise InvalidRequest("doc_id: must be a non-empty string", field="doc_id")
        return quote(value, safe="")
    if not isinstance(value, str) or not NAMESPACE_PATTERN.match(value):
        raise InvalidRequest(f"{name}: must match {NAMESPACE_PATTERN.pattern} (got {value!r})", field=name)
    return value


def _json(data: Any, method: str) -> dict[str, Any]:
    try:
        content = json.dumps(data, ensure_ascii=False, allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(f"{method}: the request is not JSON-serialisable ({exc})") from None
    return {"content": content, "headers": {"content-type": "application/json"}}


def request_args(method: str, body: Body) -> tuple[str, str, dict[str, Any]]:
    """(HTTP verb, path, httpx keyword arguments) for one RPC."""
    verb, template = ROUTES[method]
    names = [n for n in ("namespace", "name", "doc_id") if "{" + n + "}" in template]
    path = template.format(**{n: _path_param(n, body.get(n)) for n in names})
    rest = {k: v for k, v in body.items() if k not in names}
    if method == "CountDocuments" and rest.get("filter"):
        return (
            verb,
            path,
            {"params": {"filter": _json(rest["filter"], method)["content"].decode()}, "headers": {}},
        )
    if verb == "GET":
        return verb, path, {"headers": {}}
    return verb, path, _json(rest, method)


def _headers(api_key: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {api_key}"} if api_key else {}


def _deadline(timeout: float | None) -> dict[str, str]:
    """The attempt's time left in whole milliseconds, rounded down (at least 1, as the service asks)."""
    return {} if timeout is None else {DEADLINE_HEADER: str(max(1, int(timeout * 1000)))}


class _HttpBase:
    target: str
    _headers: dict[str, str]

    def _request(self, method: str, body: Body, timeout: float | None) -> tuple[str, str, dict[str, Any]]:
        """(verb, URL, httpx keyword arguments) of one attempt, its headers included."""
        verb, path, kwargs = request_args(method, body)
        kwargs["headers"].update(self._headers, **trace_headers(), **_deadline(timeout))
        return verb, self.target + path, {**kwargs, "timeout": timeout}


def _result(response: httpx.Response) -> Body:
    try:
        body = response.json()
    except ValueError:
        body = response.text
    if response.is_success and isinstance(body, dict):
        return body
    if response.is_success:
        raise KnowledgeError(f"malformed response: {str(body)[:200]!r}", http_status=response.status_code)
    raise from_http(response.status_code, body, response.headers.get("retry-after"))


def _network_error(exc: httpx.HTTPError, url: str) -> KnowledgeError:
    if isinstance(exc, httpx.TimeoutException):
        return DeadlineExceeded(f"{url}: no answer within the deadline ({type(exc).__name__})")
    return Unavailable(f"{url}: {type(exc).__name__}: {exc}")


def _in_batch(exc: KnowledgeError, index: int) -> KnowledgeError:
    """Name the batch that failed (earlier batches are already ingested)."""
    detail = f"IngestStream batch {index}: {exc.detail}"
    if index:
        detail += " (earlier batches were ingested)"
    return type(exc)(
        detail, status=exc.status, http_status=exc.http_status, field=exc.field, retry_after=exc.retry_after
    )


def _merge(parts: list[Body]) -> Body:
    results = [r for part in parts for r in part.get("results", [])]
    return {"results": results, "index_version": parts[-1].get("index_version", 0) if parts else 0}


def _remaining(deadline: float | None) -> float | None:
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0:
        raise DeadlineExceeded("IngestStream: deadline passed between batches")
    return left


class HttpTransport(_HttpBase):
    """Blocking HTTP transport (``target`` like ``"127.0.0.1:8080"`` or ``"https://host"``).

    Args:
        target: Base URL (or host:port) of the service's HTTP front door.
        api_key: Sent as ``Authorization: Bearer <key>`` on every request.
        client: An ``httpx.Client`` to use instead of the transport's own (it is not closed).
    """

    def __init__(self, target: str, *, api_key: str | None = None, client: httpx.Client | None = None):
        self.target = base_url(target)
        self._owned = client is None
        self._client = client or httpx.Client()
        self._headers = _headers(api_key)

    def call(self, method: str, body: Body, *, timeout: float | None) -> Body:
        verb, url, kwargs = self._request(method, body, timeout)
        try:
            response = self._client.request(verb, url, **kwargs)
        except httpx.HTTPError as exc:
            raise _network_error(exc, url) from None
        return _result(response)

    def stream(self, method: str, bodies: Iterable[Body], *, timeout: float | None) -> Body:
        deadline = None if timeout is None else time.monotonic() + timeout
        parts: list[Body] = []
        try:
            for body in bodies:
                parts.append(self.call("Ingest", body, timeout=_remaining(deadline)))
        except KnowledgeError as exc:
            raise _in_batch(exc, len(parts)) from None
        if not parts:
            raise InvalidRequest("IngestStream: send at least one batch")
        return _merge(parts)

    def close(self) -> None:
        if self._owned:
            self._client.close()


class AsyncHttpTransport(_HttpBase):
    """asyncio HTTP transport.

    Args:
        target: Base URL (or host:port) of the service's HTTP front door.
        api_key: Sent as ``Authorization: Bearer <key>`` on every request.
        client: An ``httpx.AsyncClient`` to use instead of the transport's own (it is not closed).
    """

    def __init__(self, target: str, *, api_key: str | None = None, client: httpx.AsyncClient | None = None):
        self.target = base_url(target)
        self._owned = client is None
        self._client = client or httpx.AsyncClient()
        self._headers = _headers(api_key)

    async def call(self, method: str, body: Body, *, timeout: float | None) -> Body:
        verb, url, kwargs = self._request(method, body, timeout)
        try:
            response = await self._client.request(verb, url, **kwargs)
        except httpx.HTTPError as exc:
            raise _network_error(exc, url) from None
        return _result(response)

    async def stream(
        self, method: str, bodies: AsyncIterable[Body] | Iterable[Body], *, timeout: float | None
    ) -> Body:
        deadline = None if timeout is None else time.monotonic() + timeout
        parts: list[Body] = []
        try:
            if isinstance(bodies, AsyncIterable):
                async for body in bodies:
                    parts.append(await self.call("Ingest", body, timeout=_remaining(deadline)))
            else:
                for body in bodies:
                    parts.append(await self.call("Ingest", body, timeout=_remaining(deadline)))
        except KnowledgeError as exc:
            raise _in_batch(exc, len(parts)) from None
        if not parts:
            raise InvalidRequest("IngestStream: send at least one batch")
        return _merge(parts)

    async def close(self) -> None:
        if self._owned:
            await self._client.aclose()
