"""Embedded AWS: moto in this process, for the local stack and the integration tests.

Nothing here is deployed. moto's backends are plain Python objects that are not safe under
concurrent requests (a conditional update is a read, then a write), while real DynamoDB applies
each request atomically. The local stack serves requests on many threads, so every request to the
embedded AWS is applied under one lock: each call is atomic, as it is on AWS.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, ClassVar

import boto3
import botocore.session
from botocore.loaders import JSONFileLoader, create_loader
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber

REGION = "eu-north-1"
ACCOUNT_ID = "123456789012"

_FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_SESSION_TOKEN": "local",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}

_lock = threading.RLock()
_unlocked_process_request = BotocoreStubber.process_request


def _process_request_atomically(self: BotocoreStubber, request: Any) -> Any:
    with _lock:
        return _unlocked_process_request(self, request)


def use_fake_credentials(environ: MutableMapping[str, str] = os.environ, *, endpoint: str | None = None) -> None:
    """Point every boto3 client at moto's region with fake credentials, never at a real account, nor at an
    endpoint of the developer's own (DynamoDB Local, say): moto answers AWS's addresses only. `endpoint`:
    moto's own server, for every service (botocore's AWS_ENDPOINT_URL)."""
    environ.update(_FAKE_CREDENTIALS)
    for name in [n for n in environ if n == "AWS_PROFILE" or n.startswith("AWS_ENDPOINT_URL")]:
        environ.pop(name, None)
    if endpoint is None:
        environ["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"] = "true"  # nor one from ~/.aws/config
    else:  # the flag would ignore it too; botocore takes it before any in ~/.aws/config
        environ.pop("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", None)
        environ["AWS_ENDPOINT_URL"] = endpoint


class _FilesParsedOnce(JSONFileLoader):
    """botocore's data files (endpoints, partitions, service models and their endpoint rules), each parsed
    once in the process, not once for each session: each local stack (each integration test's) makes
    sessions of its own, and their first clients parsed some 2 MB of JSON again (endpoints.json is 1.2 MB):
    some 300 ms of each test that runs the workflow, most of it at its first execution (the executor's
    clients), and some 50 ms of a stack's start.

    A session's clients already share one parse of each file. What botocore writes into one it has parsed
    is the same whichever session writes it: an endpoint it resolved (into endpoints.json's entry), an S3
    or S3 Control operation's path or host prefix taken out as each client is made. A model it merges
    extras into (a `<name>.sdk-extras.json` beside it) is parsed afresh each time all the same."""

    _parsed: ClassVar[dict[str, Any]] = {}

    def load_file(self, file_path: str) -> Any:
        if os.path.isfile(f"{file_path}.sdk-extras.json"):
            return super().load_file(file_path)
        if file_path not in self._parsed:
            self._parsed[file_path] = super().load_file(file_path)
        return self._parsed[file_path]


def new_session() -> boto3.Session:
    """A boto3 session in moto's region whose botocore data files are parsed once in the process."""
    made = botocore.session.get_session()
    loader = create_loader(made.get_config_variable("data_path"))
    loader.file_loader = _FilesParsedOnce()
    made.register_component("data_loader", loader)
    return boto3.Session(botocore_session=made, region_name=REGION)


@contextmanager
def embedded_aws() -> Iterator[boto3.Session]:
    """moto for every boto3 client in this process, with Step Functions executing its definitions."""
    use_fake_credentials()
    BotocoreStubber.process_request = _process_request_atomically  # type: ignore[method-assign]
    try:
        with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
            yield new_session()
    finally:
        BotocoreStubber.process_request = _unlocked_process_request  # type: ignore[method-assign]
