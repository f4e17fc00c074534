"""The HTTP side of the error table: every failure answers with the service's JSON error shape."""

from __future__ import annotations

import logging
import math

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from knowledge_service.core.errors import KnowledgeError, Overloaded, PayloadTooLarge, from_validation_error

log = logging.getLogger(__name__)


class BodyTooLarge(StarletteHTTPException):
    """Raised from ``receive`` once a body passes its cap (FastAPI re-raises HTTPExceptions)."""

    def __init__(self, cap: int) -> None:
        super().__init__(413)
        self.error = too_large(cap)


def too_large(cap: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"request body is over the {cap}-byte cap for this call; send less per request "
        "(fewer documents or files)",
        field="body",
    )


def error_response(err: KnowledgeError) -> JSONResponse:
    """An error as the body ``{"error": {code, message, field?}}`` with its status from the table."""
    headers = {"Retry-After": str(math.ceil(err.retry_after_s))} if isinstance(err, Overloaded) else None
    return JSONResponse(err.to_dict(), status_code=err.http_status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(KnowledgeError)
    async def knowledge_error(_: Request, exc: KnowledgeError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(from_validation_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc, BodyTooLarge):
            return error_response(exc.error)
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "INVALID_ARGUMENT")
        body = {"error": {"code": code, "message": str(exc.detail)}}
        return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return JSONResponse({"error": {"code": "INTERNAL", "message": "internal error"}}, status_code=500)
