"""Request and response models of the HTTP API that are not owned by one area."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, StringConstraints, WithJsonSchema

MAX_BODY_BYTES = 16 * 1024  # a request's body, at most (a 413 past it)

# A PIN code or one-time code: six ASCII digits (`\d` would let other scripts' digits through).
SixDigits = Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]
# A password of the person's choosing: judged by the password policy, so that one too short (even empty)
# or too long is the 422 `weak-password` API.md names, with its reason. The bound, half the body's, is
# there for what it makes pydantic check besides: a lone surrogate (no character at all, which JSON lets
# through as an escape) is refused as the request's shape, as in every other text; and one longer than
# the bound is refused for its length (a 422), not as a body too large (413), as the document says.
NewPassword = Annotated[
    str,
    StringConstraints(max_length=MAX_BODY_BYTES // 2),
    Field(description="At least 8 characters, at most 256; 15 or more is better"),
]


def _to_the_millisecond(moment: datetime) -> str:
    """In UTC, written with Z as pydantic writes it (2026-12-06T12:00:00.123Z)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# A time in a response: to the millisecond, as the tables keep times (minid.adapters.dynamodb.iso), so that
# an answer made from a write (a verification's `updated_at`) is the same as the record read again after it.
Moment = Annotated[
    datetime,
    PlainSerializer(_to_the_millisecond, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class ResponseModel(BaseModel):
    """Base of every response body. Its validators are built at its first use, not at import: a
    function has models for all its routes, and an execution environment may serve only one of them."""

    # A field with a default is always in the body sent: the document lists it as required (as a client
    # may rely on it), not as optional.
    model_config = ConfigDict(defer_build=True, json_schema_serialization_defaults_required=True)


class RequestModel(BaseModel):
    """Base of every request body: unknown fields are refused rather than silently ignored (and, as for
    responses, the validators are built at first use)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)


class HealthStatus(ResponseModel):
    status: Literal["ok"]
