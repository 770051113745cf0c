"""End-to-end tests: the local stack started as `make run` starts it, on a free port, over HTTP.

Everything the stack writes is captured to files. The functions' logs (and any metric or trace they
would emit: Powertools writes them to stdout as well) must not hold anything personal that the tests
used: each session stack is searched for it when it stops, and a finding fails the run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.e2e.client import ApiClient
from tests.e2e.personal_data import PersonalData

STARTUP_SECONDS = 60
BANNER_END = "  Ctrl-C stops."
# The local stack's own console: the simulated post, phone and mailbox, which show what they deliver (not
# deployed). The gateway's and the event sources' lines are kept: there a function's uncaught failure is
# written, as the Lambda runtime writes it to the function's own log.
LOCAL_CONSOLE = ("local.outbox", "local.print_provider")


@dataclass
class RunningStack:
    process: subprocess.Popen[bytes]
    url: str
    banner: list[str]
    stdout: Path
    stderr: Path
    api: ApiClient = field(init=False)

    def __post_init__(self) -> None:
        self.api = ApiClient(self.url)

    def written(self) -> list[str]:
        """What the functions wrote, as CloudWatch Logs would hold it: stdout after the banner, and
        stderr but for the local stack's console."""
        out = self.stdout.read_text(errors="replace").splitlines()[len(self.banner) :]
        err = self.stderr.read_text(errors="replace").splitlines()
        return out + [line for line in err if not line.startswith(LOCAL_CONSOLE)]

    def function_logs(self) -> list[dict[str, Any]]:
        """The structured (Powertools) log lines."""
        return [json.loads(line) for line in self.written() if line.startswith("{")]


def start_local_stack(*arguments: str, logs: Path | None = None) -> RunningStack:
    logs = logs or Path(tempfile.mkdtemp(prefix="minid-e2e-"))
    stdout, stderr = logs / "stdout.log", logs / "stderr.log"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(  # noqa: S603  (this interpreter, the project's own module)
            [sys.executable, "-m", "local", "--port", "0", "--print-delay", "0", *arguments],
            cwd=ROOT,
            stdout=out,
            stderr=err,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        lines = stdout.read_text(errors="replace").splitlines()
        if BANNER_END in lines:
            banner = lines[: lines.index(BANNER_END) + 1]
            return RunningStack(process, banner[0].split(": ", 1)[1], banner, stdout, stderr)
        if process.poll() is not None:
            raise RuntimeError(f"the local stack exited with {process.returncode}: {stderr.read_text()[-2000:]}")
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("the local stack did not start in time")


def stop_local_stack(stack: RunningStack, sig: int = signal.SIGINT) -> int:
    stack.process.send_signal(sig)
    try:
        return stack.process.wait(timeout=15)
    finally:
        if stack.process.poll() is None:
            stack.process.kill()


def personal_data_in(stack: RunningStack) -> PersonalData:
    """Everything personal the session used on the stack (read before it stops)."""
    data = PersonalData()
    persons = stack.api.get("/_local/persons").json()["persons"]
    for person in persons:
        data.add(person["identity_number"], "identity number")
    data.add_outbox(stack.api.get("/_local/outbox").json())
    for body in stack.api.exchanges:
        data.add_exchange(body)
    for person in persons:  # the names and addresses of every person the stack holds, used or not
        data.add_person(person)
    return data


@contextmanager
def checked_local_stack(*arguments: str) -> Iterator[RunningStack]:
    """A local stack for a session; when it stops, nothing personal may be in what it wrote."""
    stack = start_local_stack(*arguments)
    try:
        yield stack
        data = personal_data_in(stack)
    finally:
        code = stop_local_stack(stack)
    assert code == 0
    found = sorted(set(data.found_in(stack.written())))
    if found:
        pytest.fail(f"personal data in the logs of {stack.stdout.parent}: {found[:20]}", pytrace=False)


@pytest.fixture(scope="session")
def local_stack() -> Iterator[RunningStack]:
    with checked_local_stack() as stack:
        yield stack


@pytest.fixture(scope="session")
def api(local_stack: RunningStack) -> ApiClient:
    return local_stack.api


@pytest.fixture(scope="session")
def persons(api: ApiClient) -> dict[str, list[dict[str, Any]]]:
    by_category: dict[str, list[dict[str, Any]]] = {}
    for person in api.get("/_local/persons").json()["persons"]:
        by_category.setdefault(person["category"], []).append(person)
    return by_category
