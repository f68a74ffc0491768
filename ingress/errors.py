"""Every refusal is an `ApiError`: HTTP status plus a JSON body naming the field and the rule."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError
from starlette.responses import Response

from ingress.event_schemas import ErrorBody, ErrorItem


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        errors: list[ErrorItem] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.errors = errors or []
        self.headers = headers or {}

    @classmethod
    def field(
        cls, status: int, error: str, field: str, rule: str, message: str, headers: dict[str, str] | None = None
    ) -> ApiError:
        return cls(status, error, message, [ErrorItem(field=field, rule=rule, message=message)], headers)

    def body(self, request_id: str | None) -> ErrorBody:
        return ErrorBody(
            status=self.status, error=self.error, message=self.message, errors=self.errors, request_id=request_id
        )

    def response(self, request_id: str | None) -> Response:
        return json_response(self.body(request_id).model_dump(exclude_none=True), self.status, self.headers)


def json_response(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(content), status_code=status, headers=headers, media_type="application/json")


def _loc(prefix: str, loc: tuple[int | str, ...]) -> str:
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out = f"{out}.{part}" if out else str(part)
    return out or "(body)"


def from_validation(exc: ValidationError, prefix: str = "") -> ApiError:
    """422 listing each bad field (path like data.phone) with pydantic's rule name and message."""
    items = [
        ErrorItem(
            field=_loc(prefix, tuple(e["loc"])),
            rule=str(e["type"]),
            message=str(e["msg"]).removeprefix("Value error, "),
        )
        for e in exc.errors(include_url=False, include_input=False)
    ]
    return schema_error(items)


def schema_error(items: list[ErrorItem]) -> ApiError:
    """422 naming each bad field, the first three also in the message."""
    summary = "; ".join(f"{i.field}: {i.message}" for i in items[:3])
    return ApiError(422, "validation_failed", f"the request does not match the schema ({summary})", items)
