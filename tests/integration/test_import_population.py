"""The operators' import of the population register (tools/import_population.py), on moto."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

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
from tools.import_population import ImportRefused, check, main, read_persons, write

PERSON = Person(
    given_name="Kari",
    family_name="Importert",
    birth_date=date(1980, 5, 17),
    kind=IdentityNumberKind.FODSELSNUMMER,
    status=PersonStatus.RESIDENT,
    address=NorwegianAddress("Storgata 1", "0155", "OSLO"),
)
INVALID = "17058012345"  # the check digits do not hold
KEYER = Keyer(Pepper(b"a pepper for these tests alone, long enough"))


def a_number(individual: int = 501) -> str:
    """A synthetic fødselsnummer born as PERSON was, not in the seeded register (its numbers are others)."""
    for i in range(individual, 1000):
        if (number := compose_identity_number(date(1980, 5, 17), i, synthetic=True)) is not None:
            return number
    raise AssertionError("no number")


def line(number: str, person: Person = PERSON) -> str:
    return msgspec.json.encode({"identity_number": number, "person": person}).decode()


def where(stack: Stack) -> list[str]:
    """The stack's population table and pepper secret, named (as `--stack` looks them up on AWS)."""
    return ["--table", stack.refs["PopulationRegisterTable"], "--pepper-secret", stack.refs["PepperSecret"]]


def registered(aws: boto3.Session, stack: Stack, number: str) -> Person | None:
    keyer = Keyer(load_pepper(aws.client("secretsmanager"), stack.refs["PepperSecret"]))
    key = keyer.person_key(parse_identity_number(number, allow_synthetic=True, today=date.today()))
    return DynamoDbPopulationRegister(aws.client("dynamodb"), stack.refs["PopulationRegisterTable"]).find(key)


def count(aws: boto3.Session, stack: Stack) -> int:
    return int(aws.client("dynamodb").scan(TableName=stack.refs["PopulationRegisterTable"])["Count"])


def test_an_import_writes_each_person_under_the_stack_s_own_key(
    aws: boto3.Session, stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    number, other = a_number(), a_number(520)
    moved = msgspec.structs.replace(PERSON, address=NorwegianAddress("Nygata 2", "5003", "BERGEN"))
    persons = tmp_path / "persons.jsonl"
    # a byte-order mark (a Windows export), a blank line, and a number given twice: its last line's
    persons.write_bytes(f"\ufeff{line(number)}\n\n{line(other)}\n{line(number, moved)}\n".encode())
    assert main([str(persons), *where(stack), "--allow-synthetic"], aws) == 0
    assert registered(aws, stack, number) == moved
    assert registered(aws, stack, other) == PERSON
    assert main([str(persons), *where(stack), "--allow-synthetic"], aws) == 0  # run again: the same
    assert count(aws, stack) == 2
    told = capsys.readouterr().out
    assert "3 persons checked; 0 alive with no address" in told
    assert number not in told


def test_an_import_cut_short_is_taken_up_from_a_line(aws: boto3.Session, stack: Stack, tmp_path: Path) -> None:
    numbers = [a_number(530), a_number(540), a_number(550)]
    persons = tmp_path / "persons.jsonl"
    persons.write_text("".join(f"{line(n)}\n" for n in numbers))
    assert main([str(persons), *where(stack), "--allow-synthetic", "--from-line", "3"], aws) == 0
    assert [registered(aws, stack, n) is not None for n in numbers] == [False, False, True]


@pytest.mark.parametrize(
    "case",
    [
        ('{"identity_number": "' + INVALID + '", "person": {}}', "not a person"),
        ("not json", "not a person"),
        (line(INVALID), "not an identity number"),
        (line(a_number(), msgspec.structs.replace(PERSON, kind=IdentityNumberKind.D_NUMBER)), "the number is a fnr"),
        (line(a_number()).replace('"person"', '"extra":1,"person"'), "not a person"),
        (line(a_number()).replace('"address"', '"adress"'), "not a person"),  # misspelt: not dropped unseen
        (line(a_number()).replace('"street"', '"care":"x","street"'), "not a person"),
        (line(a_number(), msgspec.structs.replace(PERSON, status=PersonStatus.DECEASED)), "a death needs its date"),
        (line(a_number(), msgspec.structs.replace(PERSON, deceased_on=date(2020, 1, 1))), "a death needs its date"),
        (line(a_number()).replace("Kari", "K\udcffri"), "not UTF-8"),
    ],
)
def test_a_bad_line_writes_nothing_and_is_named_by_its_number_only(
    aws: boto3.Session, stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: tuple[str, str]
) -> None:
    bad, why = case
    persons = tmp_path / "persons.jsonl"
    persons.write_bytes(f"{line(a_number(600))}\n{bad}\n".encode(errors="surrogateescape"))
    assert main([str(persons), *where(stack), "--allow-synthetic"], aws) == 1
    told = capsys.readouterr().err
    assert f"Nothing written: line 2: {why}" in told
    assert "Kari" not in told
    assert INVALID not in told
    assert count(aws, stack) == 0


def test_a_production_import_refuses_synthetic_numbers() -> None:
    with pytest.raises(ImportRefused, match="line 1: not an identity number"):
        list(read_persons([line(a_number())], KEYER, allow_synthetic=False, today=date.today()))


def test_the_check_counts_the_living_a_letter_cannot_reach() -> None:
    nowhere = msgspec.structs.replace(PERSON, address=None)
    dead = msgspec.structs.replace(PERSON, address=None, status=PersonStatus.DECEASED, deceased_on=date(2020, 1, 1))
    lines = [line(a_number(610), nowhere), line(a_number(620), dead), line(a_number(630))]
    counted = check(lines, KEYER, allow_synthetic=True, today=date.today())
    assert (counted.persons, counted.no_address) == (3, 1)


def test_an_imported_person_s_letter_is_printed(driver: LetterDriver) -> None:
    """Imported with the stack's pepper, the person is found by the workflow: the letter goes to print."""
    number = a_number(700)
    persons = read_persons([line(number)], driver.local.keyer, allow_synthetic=True, today=date.today())
    assert write(driver.dynamodb, driver.local.stack.refs["PopulationRegisterTable"], persons) == 1
    assert driver.order(number).status == 202
    job = driver.next_print_job()
    assert job["letter_id"] == driver.only_letter(number).letter_id


def test_the_line_told_to_go_on_from_loses_no_one(aws: boto3.Session, stack: Stack) -> None:
    """Every "written through line N" holds when it is told (each line up to N is in the table), and a run
    stopped by a failing write, taken up from the line it names, writes everyone."""
    numbers = [n for i in range(100, 1000) if (n := compose_identity_number(date(1980, 5, 17), i, synthetic=True))]
    lines = [line(n) for n in numbers[:60]]
    keyer = Keyer(load_pepper(aws.client("secretsmanager"), stack.refs["PepperSecret"]))
    table = stack.refs["PopulationRegisterTable"]
    dynamodb = aws.client("dynamodb")
    told: list[str] = []

    def tell(message: str) -> None:
        told.append(message)
        through = int(message.split("through line ")[1].split(";", maxsplit=1)[0].split(" ", maxsplit=1)[0])
        assert count(aws, stack) == through  # one person a line here

    calls: list[int] = []
    failing = [2]  # the call that fails

    def fail_one(**_: Any) -> None:
        calls.append(1)
        if len(calls) in failing:
            raise ConnectionError("the network, gone")

    dynamodb.meta.events.register("before-call.dynamodb.BatchWriteItem", fail_one)
    with pytest.raises(ConnectionError):
        write(dynamodb, table, read_persons(lines, keyer, allow_synthetic=True, today=date.today()), told=tell, every=1)
    assert told[-1] == "stopped: written through line 25; go on with --from-line 26"
    # taken up from there, and stopped again at its first write: still through line 25, not "line 0"
    failing.append(3)
    persons = read_persons(lines, keyer, allow_synthetic=True, today=date.today())
    with pytest.raises(ConnectionError):
        write(dynamodb, table, (p for p in persons if p.at >= 26), told=tell, every=1, from_line=26)
    assert told[-1] == "stopped: written through line 25; go on with --from-line 26"
    dynamodb.meta.events.unregister("before-call.dynamodb.BatchWriteItem", fail_one)
    persons = read_persons(lines, keyer, allow_synthetic=True, today=date.today())
    assert write(dynamodb, table, (p for p in persons if p.at >= 26), told=tell, every=1, from_line=26) == 35
    assert told[-1] == "written through line 50 (25 persons); go on with --from-line 51"
    assert count(aws, stack) == 60
