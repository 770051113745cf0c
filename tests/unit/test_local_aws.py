"""The embedded AWS's sessions: botocore's data files parsed once in the process, not once for each session."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.loaders import JSONFileLoader

from local.aws import REGION, embedded_aws, new_session
from local.functions import Functions, route_lambda_invocations


@pytest.fixture
def parsed() -> Iterator[Counter[str]]:
    """The data files botocore parses (reads from disk), by path (without its .json), while the test runs."""
    counts: Counter[str] = Counter()
    original = JSONFileLoader.load_file

    def counted(self: JSONFileLoader, file_path: str) -> Any:
        data = original(self, file_path)
        if data is not None:
            counts[file_path] += 1
        return data

    JSONFileLoader.load_file = counted  # type: ignore[method-assign]
    try:
        yield counts
    finally:
        JSONFileLoader.load_file = original  # type: ignore[method-assign]


def test_a_second_session_s_clients_parse_no_file_again(parsed: Counter[str]) -> None:
    new_session().client("dynamodb", region_name=REGION)  # the files parsed here, or in an earlier test
    first = sum(parsed.values())
    new_session().client("dynamodb", region_name=REGION)
    new_session().client("dynamodb", region_name=REGION)
    assert sum(parsed.values()) == first, parsed
    # where a plain session's first client parses them all again
    botocore.session.get_session().create_client("dynamodb", region_name=REGION)
    assert any(path.endswith("/endpoints") for path in parsed), parsed


def test_a_model_botocore_merges_extras_into_is_parsed_for_each_session(parsed: Counter[str]) -> None:
    """botocore merges a model's `.sdk-extras.json` into the model it parsed, in place: each session's is its
    own, and each is botocore's."""
    models = [new_session()._session.get_service_data("secretsmanager") for _ in range(3)]
    (model,) = [path for path in parsed if re.search(r"/secretsmanager/[\d-]+/service-2$", path)]
    assert parsed[model] == 3
    assert models[0] is not models[1]
    assert models[0] is not models[2]
    plain = botocore.session.get_session().get_service_data("secretsmanager")
    assert models == [plain] * 3


def test_the_local_stack_s_sessions_and_the_executor_s_parse_no_file_again(parsed: Counter[str]) -> None:
    """The embedded AWS's session, and boto3's default one, which moto's Step Functions executor makes its
    clients from (set as the local stack starts)."""
    for service in ("dynamodb", "lambda"):
        new_session().client(service, region_name=REGION)  # the files parsed here, or in an earlier test
    first = sum(parsed.values())
    default = boto3.DEFAULT_SESSION
    try:
        with embedded_aws() as session:
            session.client("dynamodb")
            route_lambda_invocations(Functions([]))
            boto3.client("lambda")
    finally:
        boto3.DEFAULT_SESSION = default
    assert sum(parsed.values()) == first, parsed
