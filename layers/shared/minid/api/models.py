"""Request and response models of the HTTP API that are not owned by one area."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class HealthStatus(BaseModel):
    status: Literal["ok"]


class RequestModel(BaseModel):
    """Base of every request body: unknown fields are refused rather than silently ignored."""

    model_config = ConfigDict(extra="forbid")
