"""The population register on DynamoDB (moto), seeded with the synthetic population."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import boto3
import pytest

from local.population_seed import generate_population
from local.provision import Stack
from minid.adapters.aws_errors import StillUnprocessed
from minid.adapters.dynamodb import batch_get, to_item
from minid.adapters.population import DynamoDbPopulationRegister
from minid.adapters.secrets import load_pepper
from minid.domain.identity import compose_identity_number, parse_identity_number
from minid.domain.keys import Keyer, PersonKey

TODAY = date(2026, 11, 22)


@pytest.fixture
def keyer(aws: boto3.Session, stack: Stack) -> Keyer:
    return Keyer(load_pepper(aws.client("secretsmanager"), stack.refs["PepperSecret"]))


@pytest.fixture
def register(aws: boto3.Session, stack: Stack) -> DynamoDbPopulationRegister:
    return DynamoDbPopulationRegister(aws.client("dynamodb"), stack.refs["PopulationRegisterTable"])


def key_of(keyer: Keyer, number: str) -> PersonKey:
    return keyer.person_key(parse_identity_number(number, allow_synthetic=True, today=TODAY))


def test_every_seeded_person_is_found_as_seeded(register: DynamoDbPopulationRegister, keyer: Keyer) -> None:
    population = generate_population(year=TODAY.year)
    keys = [key_of(keyer, p.identity_number) for p in population]

    assert register.put_many(zip(keys, (p.person for p in population), strict=True)) == len(population)

    for key, seeded in zip(keys, population, strict=True):
        assert register.find(key) == seeded.person


def test_an_unknown_number_is_not_found(register: DynamoDbPopulationRegister, keyer: Keyer) -> None:
    unknown = compose_identity_number(date(1990, 6, 1), 123, synthetic=True)
    assert unknown is not None
    assert register.find(key_of(keyer, unknown)) is None


def test_no_identity_number_is_stored_in_clear(
    aws: boto3.Session, stack: Stack, register: DynamoDbPopulationRegister, keyer: Keyer
) -> None:
    population = generate_population(year=TODAY.year, count=100)
    register.put_many((key_of(keyer, p.identity_number), p.person) for p in population)
    # A Scan is allowed here, in a test that reads everything the table holds.
    items = aws.client("dynamodb").scan(TableName=stack.refs["PopulationRegisterTable"])["Items"]
    stored = json.dumps(items)
    assert len(items) == len(population)
    assert not [p.identity_number for p in population if p.identity_number in stored]


def test_a_read_dynamodb_leaves_unprocessed_is_asked_for_again_and_given_up_after_its_tries(
    aws: boto3.Session, stack: Stack
) -> None:
    """BatchGetItem answers what it could not read now (over its capacity for the moment) as
    UnprocessedKeys: asked for again, with its projection, and found; left unprocessed at every try, given
    up (StillUnprocessed, a 503) after the last, with no pause after it."""
    dynamodb, table = aws.client("dynamodb"), stack.refs["PopulationRegisterTable"]
    key = {"pk": "person-x"}
    dynamodb.put_item(TableName=table, Item=to_item(key | {"status": "resident", "given_name": "Kari"}))
    asked: list[dict[str, Any]] = []
    left: list[int] = [1]  # the calls still to answer with the key unprocessed

    def unprocessed(parsed: dict[str, Any], **_: Any) -> None:
        if left[0] > 0:
            left[0] -= 1
            parsed["Responses"] = {table: []}
            parsed["UnprocessedKeys"] = {table: asked[-1][table]}

    dynamodb.meta.events.register(
        "before-parameter-build.dynamodb.BatchGetItem", lambda params, **_: asked.append(params["RequestItems"])
    )
    dynamodb.meta.events.register("after-call.dynamodb.BatchGetItem", unprocessed)
    found = batch_get(dynamodb, [(table, to_item(key))], only={table: ("status",)})
    assert found.get(table, to_item(key)) == key | {"status": "resident"}  # projected, as asked the first time
    assert len(asked) == 2
    assert asked[1] == asked[0]

    asked.clear()
    left[0] = 3
    paused: list[float] = []
    with pytest.raises(StillUnprocessed):
        batch_get(dynamodb, [(table, to_item(key))], tries=3, sleep=paused.append)
    assert len(asked) == 3
    assert paused == [0.025, 0.05]  # between the tries, doubling; none after the last
