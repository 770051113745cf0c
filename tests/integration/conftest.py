"""Integration tests: the real handlers and adapters on moto, provisioned from template.yaml."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest

from local.aws import embedded_aws
from local.provision import Stack, provision
from local.template import Template


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
