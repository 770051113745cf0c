"""Integration tests: the real handlers and adapters on moto, provisioned from template.yaml."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import boto3
import pytest

from local.aws import embedded_aws
from local.provision import Stack, provision
from local.stack import LocalStack
from local.template import Template
from tests.integration.iam import Recorder, denied
from tests.integration.letters import LetterDriver


@pytest.fixture(scope="session")
def template() -> Template:
    return Template.load()


@pytest.fixture
def aws() -> Iterator[boto3.Session]:
    with embedded_aws() as session:
        yield session


@pytest.fixture
def stack(aws: boto3.Session, template: Template) -> Stack:
    return provision(template, aws)


@contextmanager
def local_driver(parameters: Mapping[str, str] | None = None) -> Iterator[LetterDriver]:
    """A fresh local stack (no print simulator: the test is the print provider) and a driver for it.

    Every AWS call its functions make is judged against the function's role as the stack stops
    (tests/integration/iam.py): a call the role denies fails the test that made it, as it would in AWS."""
    with embedded_aws() as session:
        local = LocalStack.start(session, print_delay_seconds=None, population_size=120, parameters=parameters)
        recorder = Recorder()
        recorder.install()
        for function in local.functions.by_logical_id.values():
            recorder.attribute(function)
        driver = LetterDriver(local)
        try:
            yield driver
        finally:  # a failed test's pollers too: left running, they would take the next test's messages
            recorder.uninstall()
            driver.stop_running()
            local.stop()
        assert denied(local.stack, recorder.calls) == [], "a call the function's role does not allow"


@pytest.fixture
def driver() -> Iterator[LetterDriver]:
    with local_driver() as driver:
        yield driver
