"""The population register on DynamoDB (moto), seeded with the synthetic population."""

from __future__ import annotations

import json
from datetime import date

import boto3
import pytest

from local.population_seed import generate_population
from local.provision import Stack
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
