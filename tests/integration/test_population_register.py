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
from minid.domain.keys import Keyer

TODAY = date(2026, 11, 22)


@pytest.fixture
def register(aws: boto3.Session, stack: Stack) -> DynamoDbPopulationRegister:
    pepper = load_pepper(aws.client("secretsmanager"), stack.refs["PepperSecret"])
    return DynamoDbPopulationRegister(
        aws.client("dynamodb"), stack.refs["PopulationRegisterTable"], Keyer(pepper)
    )


def test_every_seeded_person_is_found_as_seeded(register: DynamoDbPopulationRegister) -> None:
    population = generate_population(year=TODAY.year)
    numbers = [
        parse_identity_number(p.identity_number, allow_synthetic=True, today=TODAY) for p in population
    ]

    assert register.put_many(zip(numbers, (p.person for p in population), strict=True)) == len(population)

    for number, seeded in zip(numbers, population, strict=True):
        assert register.find(number) == seeded.person


def test_an_unknown_number_is_not_found(register: DynamoDbPopulationRegister) -> None:
    unknown = compose_identity_number(date(1990, 6, 1), 123, synthetic=True)
    assert unknown is not None
    assert register.find(parse_identity_number(unknown, allow_synthetic=True, today=TODAY)) is None


def test_no_identity_number_is_stored_in_clear(
    aws: boto3.Session, stack: Stack, register: DynamoDbPopulationRegister
) -> None:
    population = generate_population(year=TODAY.year, count=100)
    register.put_many(
        (parse_identity_number(p.identity_number, allow_synthetic=True, today=TODAY), p.person)
        for p in population
    )
    # A Scan is allowed here, in a test that reads everything the table holds.
    items = aws.client("dynamodb").scan(TableName=stack.refs["PopulationRegisterTable"])["Items"]
    stored = json.dumps(items)
    assert len(items) == len(population)
    assert not [p.identity_number for p in population if p.identity_number in stored]
