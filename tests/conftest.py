"""Shared test helpers: sample events, and a Lambda context."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from local.functions import LambdaContext

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"


def load_event(name: str) -> dict[str, Any]:
    """A sample event from events/, e.g. load_event("health/get-health")."""
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return event


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext(function_name="test", memory_limit_in_mb=1024, timeout_seconds=10)
