"""One error root, one table.

Every way a request can stop is a :class:`GatewayError` carrying one :class:`Cause` from a closed
list. The cause fixes the HTTP status, OpenAI's error ``type``, a stable ``code`` and the log
level; one handler (``gateway.http.errors``) renders it as OpenAI's envelope::

    GatewayError
      cause: Cause  ->  (status, type, code, log level)
      message: str  safe for the caller: never content, values, keys or upstream bodies
      param: str | None
      details: dict  extra JSON-safe fields for the body (policy reasons, entity types)

The ``openai`` SDK maps the status to its exception classes (400 BadRequestError, 401
AuthenticationError, 403 PermissionDeniedError, 404 NotFoundError, 409 ConflictError, 422
UnprocessableEntityError, 429 RateLimitError, >=500 InternalServerError).
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from typing import Any

__all__ = ["Cause", "CauseInfo", "GatewayError", "error_body"]


@dataclass(frozen=True, slots=True)
class CauseInfo:
    status: int
    type: str
    code: str
    log_level: int


class Cause(enum.Enum):
    BAD_REQUEST = CauseInfo(400, "invalid_request_error", "invalid_request", logging.INFO)
    INVALID_JSON = CauseInfo(400, "invalid_request_error", "invalid_json", logging.INFO)
    INVALID_PARAMETER = CauseInfo(400, "invalid_request_error", "invalid_parameter", logging.INFO)
    FORBIDDEN_PARAMETER = CauseInfo(
        400, "invalid_request_error", "unsupported_parameter", logging.WARNING
    )
    UNAUTHENTICATED = CauseInfo(401, "invalid_request_error", "invalid_api_key", logging.INFO)
    FORBIDDEN = CauseInfo(403, "permission_error", "forbidden", logging.INFO)
    POLICY_DENIED = CauseInfo(403, "permission_error", "policy_denied", logging.INFO)
    PII_BLOCKED = CauseInfo(403, "permission_error", "pii_blocked", logging.INFO)
    UNINSPECTABLE = CauseInfo(403, "permission_error", "uninspectable_content", logging.INFO)
    CORS_NOT_ALLOWED = CauseInfo(403, "permission_error", "cors_not_allowed", logging.INFO)
    ADDRESS_NOT_ALLOWED = CauseInfo(403, "permission_error", "address_not_allowed", logging.INFO)
    NOT_FOUND = CauseInfo(404, "invalid_request_error", "not_found", logging.INFO)
    MODEL_NOT_FOUND = CauseInfo(404, "invalid_request_error", "model_not_found", logging.INFO)
    METHOD_NOT_ALLOWED = CauseInfo(405, "invalid_request_error", "method_not_allowed", logging.INFO)
    CONFLICT = CauseInfo(409, "invalid_request_error", "conflict", logging.INFO)
    TOO_LARGE = CauseInfo(413, "invalid_request_error", "request_too_large", logging.INFO)
    UNSUPPORTED_MEDIA = CauseInfo(
        415, "invalid_request_error", "unsupported_media_type", logging.INFO
    )
    UNPROCESSABLE = CauseInfo(422, "invalid_request_error", "unprocessable", logging.INFO)
    RATE_LIMITED = CauseInfo(429, "rate_limit_error", "rate_limit_exceeded", logging.INFO)
    BUDGET_EXCEEDED = CauseInfo(429, "rate_limit_error", "token_budget_exceeded", logging.INFO)
    PARALLEL_LIMITED = CauseInfo(429, "rate_limit_error", "parallel_limit_exceeded", logging.INFO)
    SPEND_BUDGET_EXCEEDED = CauseInfo(
        429, "insufficient_quota", "spend_budget_exceeded", logging.INFO
    )
    CLIENT_CLOSED = CauseInfo(499, "client_closed", "client_closed_request", logging.INFO)
    INTERNAL = CauseInfo(500, "server_error", "internal_error", logging.ERROR)
    UPSTREAM_ERROR = CauseInfo(502, "upstream_error", "upstream_error", logging.WARNING)
    UPSTREAM_RATE_LIMITED = CauseInfo(
        429, "rate_limit_error", "upstream_rate_limited", logging.WARNING
    )
    NO_BACKEND = CauseInfo(503, "service_unavailable", "no_backend_available", logging.WARNING)
    POLICY_UNAVAILABLE = CauseInfo(503, "service_unavailable", "policy_unavailable", logging.ERROR)
    PII_UNAVAILABLE = CauseInfo(503, "service_unavailable", "pii_unavailable", logging.ERROR)
    AUDIT_UNAVAILABLE = CauseInfo(503, "service_unavailable", "audit_unavailable", logging.ERROR)
    KEY_STORE_UNAVAILABLE = CauseInfo(
        503, "service_unavailable", "key_store_unavailable", logging.ERROR
    )
    DATABASE_UNAVAILABLE = CauseInfo(
        503, "service_unavailable", "database_unavailable", logging.ERROR
    )
    LIMITER_UNAVAILABLE = CauseInfo(
        503, "service_unavailable", "limiter_unavailable", logging.ERROR
    )
    UPSTREAM_TIMEOUT = CauseInfo(504, "timeout", "upstream_timeout", logging.WARNING)

    @property
    def status(self) -> int:
        return self.value.status

    @property
    def code(self) -> str:
        return self.value.code


class GatewayError(Exception):
    """The one error root. ``message`` must be safe to show the caller and to log."""

    def __init__(
        self,
        cause: Cause,
        message: str,
        *,
        param: str | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.cause = cause
        self.message = message
        self.param = param
        self.details = details or {}
        self.headers = headers or {}

    @property
    def status(self) -> int:
        return self.cause.status

    def body(self) -> dict[str, Any]:
        return error_body(self.cause, self.message, self.param, self.details)


def error_body(
    cause: Cause, message: str, param: str | None = None, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    err: dict[str, Any] = {
        "message": message,
        "type": cause.value.type,
        "param": param,
        "code": cause.value.code,
    }
    if details:
        err.update(details)
    return {"error": err}
