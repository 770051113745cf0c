"""Cold start: each function's handler module imported and its adapters built in a fresh interpreter,
against `import boto3` and one client in a fresh interpreter.

The fresh interpreters call moto's server (a thread of this process) as their AWS, over HTTPS: building
a function's adapters reads the pepper from Secrets Manager, as it does on Lambda, its first call (the root
it needs read from the functions' hashed directory of certificate authorities, minid.wiring.ROOTS, with
the server's own added; a TLS handshake made). Each round runs the
baseline and every function once, in a shuffled order, so that the machine's load falls on all alike;
the time is taken inside the interpreter, from before the first import to the adapters built, so that
the interpreter's own start (the same for all, and Lambda's before our code runs) is left out.

Beside them, for reference, the libraries alone: what every HTTP function loads before a line of its
own (botocore and a client, Powertools' event handler and logger, pydantic with a model), loaded the way
a function loads them (minid.coldstart, and minid.wiring's session). A function's excess over that row is
our own code's. The login function once more with the garbage collector left on while it loads: what
minid.coldstart saves. And once more with every module but the standard library's compiled from its
source as it is imported: what a layer built without its .pyc files costs on Lambda, whose /opt is
read-only (layers/shared/Makefile compiles them).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from local.aws import REGION, use_fake_credentials
from local.provision import provision
from local.roots import botocore_bundle
from local.template import FunctionSpec, Template
from local.tls import HttpsMoto, https_moto
from minid.wiring import ROOTS

BASELINE = "import boto3\nboto3.client('dynamodb')\n"
# What any of our HTTP functions loads before a line of its own: botocore and a client (minid.wiring
# makes botocore's, not boto3's, from a session whose loader lists only the services we call),
# Powertools' event handler and logger, and pydantic with a model; loaded as a function loads
# (minid.coldstart).
LIBRARIES = """\
from minid import coldstart
coldstart.loading()
from minid.wiring import new_session
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from pydantic import BaseModel
class Model(BaseModel):
    name: str
APIGatewayHttpResolver(enable_validation=True)
Logger(service="bench")
new_session().create_client("dynamodb")
coldstart.loaded()
"""
_TIMED = """\
import json, sys, time
started = time.perf_counter()
clients_ms = 0.0
{body}
built = time.perf_counter()
{then}
json.dump(
    {{"ms": (built - started) * 1000, "import_ms": (imported - started) * 1000, "clients_ms": clients_ms}}, sys.stdout
)
"""
_COLLECTOR_LEFT_ON = "import minid.coldstart\nminid.coldstart.loading = minid.coldstart.packages_on_demand\n"
# Every module but the standard library's compiled from its source as it is imported, its .pyc left
# unread: Lambda's runtime has its standard library's bytecode, and a layer without its own has none.
_FROM_SOURCE = """\
import importlib.machinery, sysconfig
_stdlib = sysconfig.get_paths()["stdlib"]
_read = importlib.machinery.SourceFileLoader.get_code
def _compiled(self, fullname):
    if self.path.startswith(_stdlib):
        return _read(self, fullname)
    return self.source_to_code(self.get_data(self.path), self.path)
importlib.machinery.SourceFileLoader.get_code = _compiled
"""
_FUNCTION = """\
import importlib.util
spec = importlib.util.spec_from_file_location("app", {path!r})
module = importlib.util.module_from_spec(spec)
sys.modules["app"] = module
spec.loader.exec_module(module)
imported = time.perf_counter()
build = getattr(module, "services", None)
if build is not None:
    build()
"""
# Then the clients minid.wiring makes at their first call (every one but DynamoDB's), made now: what a
# first request that calls every service the function may call adds. Found outside the time (the walk is
# the bench's, not the function's); each made as its first call would make it, its connection not yet.
_DEFERRED_CLIENTS = """\
import gc
deferred = [o for o in gc.get_objects() if type(o).__name__ == "_ClientAtFirstCall" and o._client is None]
making = time.perf_counter()
for placeholder in deferred:
    placeholder.meta
clients_ms = (time.perf_counter() - making) * 1000
"""


LIBRARIES_ONLY = "(the libraries alone)"
COLLECTOR_ON = "(login, collector left on)"
NO_BYTECODE = "(login, no bytecode)"
REFERENCES = (LIBRARIES_ONLY, COLLECTOR_ON, NO_BYTECODE)  # rows beside the functions, not functions: no goal for them


@dataclass(frozen=True)
class Subject:
    name: str
    code: str
    environment: dict[str, str]


@dataclass(frozen=True)
class ColdStart:
    name: str
    median_ms: float
    import_ms: float  # the median time to import the handler module, of median_ms
    # the median time to the adapters built and every client made (see _DEFERRED_CLIENTS): the goal's
    with_clients_ms: float
    clients_ms: float  # the median time to make those clients alone

    def json(self, baseline_ms: float) -> dict[str, Any]:
        return {
            "median_ms": round(self.median_ms, 1),
            "import_ms": round(self.import_ms, 1),
            "ratio": round(self.median_ms / baseline_ms, 2),
            "with_clients_ms": round(self.with_clients_ms, 1),
            "clients_ms": round(self.clients_ms, 1),
            "with_clients_ratio": round(self.with_clients_ms / baseline_ms, 2),
        }


def _calling(moto: HttpsMoto, environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` with fake credentials, calling moto's server as its AWS."""
    calling = dict(environ)
    use_fake_credentials(calling, endpoint=moto.endpoint)
    return calling


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """This process's environment with `values` while inside, as it was after."""
    previous = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(previous)


def subjects(template: Template, moto: HttpsMoto) -> list[Subject]:
    """The baseline and every function, with the environment each would have on Lambda."""
    environ = _calling(moto, os.environ)
    environ.pop("PYTHONDONTWRITEBYTECODE", None)  # the first run compiles the modules once, as on a warm disk
    environ["AWS_CA_BUNDLE"] = str(moto.trust)  # a hashed directory, as minid.wiring takes it
    with _environment(environ | {"AWS_CA_BUNDLE": str(moto.certificate)}):  # boto3's clients take a file
        stack = provision(template, boto3.Session(region_name=REGION))

    def code(spec: FunctionSpec, prelude: str = "") -> str:
        module, _, _ = spec.handler.rpartition(".")
        path = spec.code_dir / f"{module.replace('.', '/')}.py"
        return _TIMED.format(body=prelude + _FUNCTION.format(path=str(path)), then=_DEFERRED_CLIENTS)

    def lambda_environment(spec: FunctionSpec) -> dict[str, str]:
        return environ | stack.function_environment(spec) | {"AWS_LAMBDA_FUNCTION_NAME": stack.function_name(spec)}

    baseline = Subject(
        "boto3 + 1 client", _TIMED.format(body=BASELINE + "imported = time.perf_counter()", then=""), environ
    )
    libraries = Subject(  # in a function's environment (the template's Globals hold what the libraries read)
        LIBRARIES_ONLY,
        _TIMED.format(body=LIBRARIES + "imported = time.perf_counter()", then=""),
        lambda_environment(template.functions()[0]),
    )
    login = next(spec for spec in template.functions() if spec.logical_id == "LoginFunction")
    # what minid.coldstart saves: the login function with the collector left on while it loads
    collector_on = Subject(COLLECTOR_ON, code(login, _COLLECTOR_LEFT_ON), lambda_environment(login))
    # what the login function costs where its modules have no bytecode, as on Lambda from a layer without it
    from_source = Subject(NO_BYTECODE, code(login, _FROM_SOURCE), lambda_environment(login))
    return [baseline, libraries, collector_on, from_source] + [
        Subject(spec.logical_id, code(spec), lambda_environment(spec)) for spec in template.functions()
    ]


def run(subject: Subject) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", subject.code], env=subject.environment, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{subject.name} failed to start:\n{done.stderr[-3000:]}")
    result: dict[str, float] = json.loads(done.stdout)
    return result


def measure(runs: int = 10) -> tuple[ColdStart, list[ColdStart]]:
    """The baseline's cold start and each function's, medians over `runs` fresh interpreters."""
    template = Template.load()
    with https_moto(Path(ROOTS)) as moto:
        everyone = subjects(template, moto)
        for subject in everyone:
            run(subject)  # writes the modules' bytecode (.pyc), which the runs below read
        times: dict[str, list[dict[str, float]]] = {s.name: [] for s in everyone}
        for _ in range(runs):
            for subject in random.sample(everyone, len(everyone)):
                times[subject.name].append(run(subject))
    medians = [
        ColdStart(
            name,
            statistics.median(t["ms"] for t in runs_of),
            statistics.median(t["import_ms"] for t in runs_of),
            statistics.median(t["ms"] + t["clients_ms"] for t in runs_of),
            statistics.median(t["clients_ms"] for t in runs_of),
        )
        for name, runs_of in times.items()
    ]
    return medians[0], medians[1:]


@dataclass(frozen=True)
class FirstCall:
    """A client's first call, on a connection of its own (connected, TLS set up, answered by moto)."""

    bundle_file_ms: float  # trusting a bundle file, as botocore does: OpenSSL parses it whole at each
    hashed_directory_ms: float  # trusting the functions' hashed directory (minid.wiring.ROOTS)
    runs: int

    def json(self) -> dict[str, Any]:
        return {
            "bundle_file_ms": round(self.bundle_file_ms, 1),
            "hashed_directory_ms": round(self.hashed_directory_ms, 1),
            "ratio": round(self.hashed_directory_ms / self.bundle_file_ms, 2),
            "runs": self.runs,
        }


def first_calls(runs: int = 20) -> FirstCall:
    """What each new connection of a function costs (its first call in a cold start, the first to each
    other service, any made anew), trusting botocore's bundle (its cacert.pem with moto's certificate)
    against the hashed directory of the same and moto's: a client made as the functions make theirs
    (minid.wiring), then its first call timed; the two alternate, in a shuffled order."""
    from minid import wiring  # noqa: PLC0415

    with https_moto(Path(ROOTS)) as moto, tempfile.TemporaryDirectory() as folder:
        bundle = Path(folder) / "bundle.pem"
        bundle.write_text(botocore_bundle() + moto.certificate.read_text())
        times: dict[Path, list[float]] = {bundle: [], moto.trust: []}
        with _environment(_calling(moto, {})):
            for _ in range(runs + 1):  # the first round, which loads the modules, is left out
                for trust in random.sample(list(times), len(times)):
                    os.environ["AWS_CA_BUNDLE"] = str(trust)
                    client = wiring.client("dynamodb")
                    started = time.perf_counter()
                    client.list_tables()
                    times[trust].append((time.perf_counter() - started) * 1000)
                    client.close()
    return FirstCall(statistics.median(times[bundle][1:]), statistics.median(times[moto.trust][1:]), runs)
