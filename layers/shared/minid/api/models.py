"""Request and response models of the HTTP API that are not owned by one area."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints

# A PIN code or one-time code: six ASCII digits (`\d` would let other scripts' digits through).
SixDigits = Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]


class HealthStatus(BaseModel):
    status: Literal["ok"]


class RequestModel(BaseModel):
    """Base of every request body: unknown fields are refused rather than silently ignored."""

    model_config = ConfigDict(extra="forbid")
