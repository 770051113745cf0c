"""Cold start: each function's handler module imported and its adapters built in a fresh interpreter,
against `import boto3` and one client in a fresh interpreter.

The fresh interpreters call moto's server (a thread of this process) as their AWS, over HTTPS: building
a function's adapters reads the pepper from Secrets Manager, as it does on Lambda, its first call (the CA
bundle loaded, a TLS handshake made). Each round runs the
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

import ipaddress
import json
import logging
import os
import random
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import certifi

from local.aws import REGION, use_fake_credentials
from local.provision import provision
from local.template import FunctionSpec, Template

BASELINE = "import boto3\nboto3.client('dynamodb')\n"
# What any of our HTTP functions loads before a line of its own: botocore and a client (minid.wiring
# makes botocore's, not boto3's, from a session whose loader lists only the services we call),
# Powertools' event handler and logger, and pydantic with a model; loaded as a function loads
# (minid.coldstart).
LIBRARIES = """\
import gc
gc.disable()
from minid.wiring import new_session
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from pydantic import BaseModel
class Model(BaseModel):
    name: str
APIGatewayHttpResolver(enable_validation=True)
Logger(service="bench")
new_session().create_client("dynamodb")
gc.freeze()
gc.enable()
"""
_TIMED = """\
import json, sys, time
started = time.perf_counter()
{body}
built = time.perf_counter()
json.dump({{"ms": (built - started) * 1000, "import_ms": (imported - started) * 1000}}, sys.stdout)
"""
_COLLECTOR_LEFT_ON = "import minid.coldstart\nminid.coldstart.loading = lambda: None\n"
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

    def json(self, baseline_ms: float) -> dict[str, Any]:
        return {
            "median_ms": round(self.median_ms, 1),
            "import_ms": round(self.import_ms, 1),
            "ratio": round(self.median_ms / baseline_ms, 2),
        }


@contextmanager
def moto_server() -> Iterator[tuple[str, str]]:
    """moto's server over HTTPS, and the CA bundle its clients trust: certifi's, which botocore loads on
    Lambda, with the server's own certificate added. A function's first call (the pepper's) then loads
    the bundle and makes a TLS handshake, as its first call to AWS does on Lambda (some 20 ms here, which
    plain HTTP left out); the baseline makes no call."""
    from moto.moto_server.werkzeug_app import (  # noqa: PLC0415  # flask is needed only here
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server  # noqa: PLC0415

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    with tempfile.TemporaryDirectory() as folder:
        certificate, key = _self_signed(Path(folder))
        bundle = Path(folder) / "bundle.pem"
        bundle.write_bytes(Path(certifi.where()).read_bytes() + certificate.read_bytes())
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certificate, key)
        app = DomainDispatcherApplication(create_backend_app)
        server = make_server("127.0.0.1", 0, app, True, request_handler=MotoRequestHandler, ssl_context=context)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"https://127.0.0.1:{server.server_address[1]}", str(bundle)
        finally:
            server.shutdown()
            thread.join()


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1, and its key, valid for a day."""
    from cryptography import x509  # noqa: PLC0415
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certificate_path, key_path = folder / "server.pem", folder / "server.key"
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return certificate_path, key_path


def subjects(template: Template, endpoint: str, ca_bundle: str) -> list[Subject]:
    """The baseline and every function, with the environment each would have on Lambda."""
    environ = dict(os.environ)
    environ.pop("PYTHONDONTWRITEBYTECODE", None)  # the first run compiles the modules once, as on a warm disk
    use_fake_credentials(environ)
    environ["AWS_ENDPOINT_URL"] = endpoint
    environ["AWS_CA_BUNDLE"] = ca_bundle
    previous = dict(os.environ)
    os.environ.update(environ)
    try:
        stack = provision(template, boto3.Session(region_name=REGION))
    finally:
        os.environ.clear()
        os.environ.update(previous)

    def code(spec: FunctionSpec, prelude: str = "") -> str:
        module, _, _ = spec.handler.rpartition(".")
        path = spec.code_dir / f"{module.replace('.', '/')}.py"
        return _TIMED.format(body=prelude + _FUNCTION.format(path=str(path)))

    def lambda_environment(spec: FunctionSpec) -> dict[str, str]:
        return environ | stack.function_environment(spec) | {"AWS_LAMBDA_FUNCTION_NAME": stack.function_name(spec)}

    baseline = Subject("boto3 + 1 client", _TIMED.format(body=BASELINE + "imported = time.perf_counter()"), environ)
    libraries = Subject(  # in a function's environment (the template's Globals hold what the libraries read)
        LIBRARIES_ONLY,
        _TIMED.format(body=LIBRARIES + "imported = time.perf_counter()"),
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
    with moto_server() as (endpoint, ca_bundle):
        everyone = subjects(template, endpoint, ca_bundle)
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
        )
        for name, runs_of in times.items()
    ]
    return medians[0], medians[1:]
