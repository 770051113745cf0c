"""The operators' import of the population register (tools/import_population.py), on moto."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import boto3
import msgspec
import pytest

from local.provision import Stack
from minid.adapters.population import DynamoDbPopulationRegister
from minid.adapters.secrets import load_pepper
from minid.domain.identity import IdentityNumberKind, compose_identity_number, parse_identity_number
from minid.domain.keys import Keyer, Pepper
from minid.domain.population import NorwegianAddress, Person, PersonStatus
from tests.integration.letters import LetterDriver
from tools.import_population import ImportRefused, Registered, main, read_persons

PERSON = Person(
    given_name="Kari",
    family_name="Importert",
    birth_date=date(1980, 5, 17),
    kind=IdentityNumberKind.FODSELSNUMMER,
    status=PersonStatus.RESIDENT,
    address=NorwegianAddress("Storgata 1", "0155", "OSLO"),
)
INVALID = "17058012345"  # the check digits do not hold


def a_number(individual: int = 501) -> str:
    """A synthetic fødselsnummer born as PERSON was, not in the seeded register (its numbers are others)."""
    for i in range(individual, 1000):
        if (number := compose_identity_number(date(1980, 5, 17), i, synthetic=True)) is not None:
            return number
    raise AssertionError("no number")


def line(number: str, person: Person = PERSON) -> str:
    return msgspec.json.encode(Registered(number, person)).decode()


def where(stack: Stack) -> list[str]:
    """The stack's population table and pepper secret, named (as `--stack` looks them up on AWS)."""
    return ["--table", stack.refs["PopulationRegisterTable"], "--pepper-secret", stack.refs["PepperSecret"]]


def test_an_import_writes_each_person_under_the_stack_s_own_key(
    aws: boto3.Session, stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    number = a_number()
    persons = tmp_path / "persons.jsonl"
    persons.write_text(f"{line(number)}\n\n")
    assert main([str(persons), *where(stack), "--allow-synthetic"], aws) == 0
    table = stack.refs["PopulationRegisterTable"]
    keyer = Keyer(load_pepper(aws.client("secretsmanager"), stack.refs["PepperSecret"]))
    key = keyer.person_key(parse_identity_number(number, allow_synthetic=True, today=date.today()))
    assert DynamoDbPopulationRegister(aws.client("dynamodb"), table).find(key) == PERSON
    assert main([str(persons), *where(stack), "--allow-synthetic"], aws) == 0  # run again: the same
    assert aws.client("dynamodb").scan(TableName=table)["Count"] == 1
    assert number not in capsys.readouterr().out


@pytest.mark.parametrize(
    "case",
    [
        ('{"identity_number": "' + INVALID + '", "person": {}}', "not a person"),
        ("not json", "not a person"),
        (line(INVALID), "not an identity number"),
        (line(a_number(), msgspec.structs.replace(PERSON, kind=IdentityNumberKind.D_NUMBER)), "the number is a fnr"),
        (line(a_number()).replace('"person"', '"extra":1,"person"'), "not a person"),
    ],
)
def test_a_bad_line_writes_nothing_and_is_named_by_its_number_only(
    aws: boto3.Session, stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: tuple[str, str]
) -> None:
    bad, why = case
    persons = tmp_path / "persons.jsonl"
    persons.write_text(f"{line(a_number(600))}\n{bad}\n")
    assert main([str(persons), *where(stack), "--allow-synthetic"], aws) == 1
    told = capsys.readouterr().err
    assert f"Nothing written: line 2: {why}" in told
    assert "Kari" not in told
    assert INVALID not in told
    assert aws.client("dynamodb").scan(TableName=stack.refs["PopulationRegisterTable"])["Count"] == 0


def test_a_production_import_refuses_synthetic_numbers() -> None:
    keyer = Keyer(Pepper(b"a pepper for this test alone, long enough"))
    with pytest.raises(ImportRefused, match="line 1: not an identity number"):
        read_persons([line(a_number())], keyer, allow_synthetic=False, today=date.today())


def test_an_imported_person_s_letter_is_printed(driver: LetterDriver) -> None:
    """Imported with the stack's pepper, the person is found by the workflow: the letter goes to print."""
    number = a_number(700)
    persons = read_persons([line(number)], driver.local.keyer, allow_synthetic=True, today=date.today())
    register = DynamoDbPopulationRegister(driver.dynamodb, driver.local.stack.refs["PopulationRegisterTable"])
    assert register.put_many(persons) == 1
    assert driver.order(number).status == 202
    job = driver.next_print_job()
    assert job["letter_id"] == driver.only_letter(number).letter_id
