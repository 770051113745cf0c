"""End-to-end tests: the local stack started as `make run` starts it, on a free port, over HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.e2e.client import ApiClient

STARTUP_SECONDS = 60


@dataclass
class RunningStack:
    process: subprocess.Popen[str]
    url: str
    banner: list[str]


def start_local_stack() -> RunningStack:
    process = subprocess.Popen(
        [sys.executable, "-m", "local", "--port", "0", "--print-delay", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    deadline = time.monotonic() + STARTUP_SECONDS
    banner: list[str] = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"the local stack exited with {process.wait()}")
        banner.append(line.rstrip("\n"))
        if line.startswith("  Ctrl-C stops."):
            url = banner[0].split(": ", 1)[1]
            return RunningStack(process, url, banner)
    process.kill()
    raise RuntimeError("the local stack did not start in time")


def stop_local_stack(stack: RunningStack, sig: int = signal.SIGINT) -> int:
    stack.process.send_signal(sig)
    try:
        return stack.process.wait(timeout=15)
    finally:
        if stack.process.poll() is None:
            stack.process.kill()


@pytest.fixture(scope="session")
def local_stack() -> Iterator[RunningStack]:
    stack = start_local_stack()
    yield stack
    assert stop_local_stack(stack) == 0


@pytest.fixture(scope="session")
def api(local_stack: RunningStack) -> ApiClient:
    return ApiClient(local_stack.url)


@pytest.fixture(scope="session")
def persons(api: ApiClient) -> dict[str, list[dict[str, Any]]]:
    by_category: dict[str, list[dict[str, Any]]] = {}
    for person in api.get("/_local/persons").json()["persons"]:
        by_category.setdefault(person["category"], []).append(person)
    return by_category
