"""The operators' import of the population register (tools/import_population.py), on moto."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import threading
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import boto3
import msgspec
import pytest
from botocore.exceptions import ClientError

from local.faults import injected_faults
from local.provision import Stack
from minid.adapters.clock import SystemClock
from minid.adapters.population import (
    EXPORT_KEY,
    UNPROCESSED_ROUNDS,
    DynamoDbPopulationRegister,
    HoldLost,
    StillUnprocessed,
)
from minid.adapters.secrets import load_pepper
from minid.domain.identity import IdentityNumberKind, compose_identity_number, parse_identity_number
from minid.domain.keys import Keyer, Pepper
from minid.domain.population import AddressProtection, ForeignAddress, NorwegianAddress, Person, PersonStatus
from minid.domain.time import today_in_norway
from tests.integration.letters import LetterDriver
from tools.import_population import FileChanged, ImportRefused, Read, check, main, read_persons, unchanged, write

DNR = IdentityNumberKind.D_NUMBER
EMIGRATED = PersonStatus.EMIGRATED
replace = msgspec.structs.replace
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


def a_number(individual: int = 501, kind: IdentityNumberKind = IdentityNumberKind.FODSELSNUMMER) -> str:
    """A synthetic fødselsnummer (or D-number) born as PERSON was, not in the seeded register (its numbers
    are others)."""
    for i in range(individual, 1000):
        if (number := compose_identity_number(date(1980, 5, 17), i, kind=kind, synthetic=True)) is not None:
            return number
    raise AssertionError("no number")


def line(number: str, person: Person = PERSON) -> str:
    return msgspec.json.encode({"identity_number": number, "person": person}).decode()


def where(stack: Stack) -> list[str]:
    """The stack's population table and pepper secret, named (as `--stack` looks them up on AWS)."""
    return ["--table", stack.refs["PopulationRegisterTable"], "--pepper-secret", stack.refs["PepperSecret"]]


def days_ago(days: int) -> str:
    """A day before today as the tool has it (in Norway: `date.today()` here is UTC's, a day off at night)."""
    return (today_in_norway(SystemClock()) - timedelta(days=days)).isoformat()


def imported(persons: Path, stack: Stack, aws: boto3.Session, *more: str, as_of: str = days_ago(1)) -> int:
    """The tool run on a file of synthetic persons, the export of `as_of`, asking nothing (`--yes`)."""
    return main([str(persons), *where(stack), "--allow-synthetic", "--as-of", as_of, "--yes", *more], aws)


def registered(aws: boto3.Session, stack: Stack, number: str) -> Person | None:
    keyer = Keyer(load_pepper(aws.client("secretsmanager"), stack.refs["PepperSecret"]))
    key = keyer.person_key(parse_identity_number(number, allow_synthetic=True, today=date.today()))
    return DynamoDbPopulationRegister(aws.client("dynamodb"), stack.refs["PopulationRegisterTable"]).find(key)


def count(aws: boto3.Session, stack: Stack) -> int:
    """The persons in the table (the export's own item, EXPORT_KEY, left out)."""
    scanned = aws.client("dynamodb").scan(
        TableName=stack.refs["PopulationRegisterTable"],
        FilterExpression="pk <> :export",
        ExpressionAttributeValues={":export": {"S": EXPORT_KEY}},
    )
    return int(scanned["Count"])


def test_an_import_writes_each_person_under_the_stack_s_own_key(
    aws: boto3.Session, stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    number, other = a_number(), a_number(520)
    moved = msgspec.structs.replace(PERSON, address=NorwegianAddress("Nygata 2", "5003", "BERGEN"))
    persons = tmp_path / "persons.jsonl"
    # a byte-order mark (a Windows export), a blank line, and a number given twice: its last line's
    persons.write_bytes(f"\ufeff{line(number)}\n\n{line(other)}\n{line(number, moved)}\n".encode())
    assert imported(persons, stack, aws) == 0
    assert registered(aws, stack, number) == moved
    assert registered(aws, stack, other) == PERSON
    assert imported(persons, stack, aws) == 0  # run again: the same
    assert count(aws, stack) == 2
    told = capsys.readouterr().out
    assert "3 persons checked: 3 resident, 0 emigrated, 0 not_resident, 0 deceased, 0 ceased; 3 fnr, 0 dnr" in told
    assert "0 alive, their number in use, with no address" in told
    assert number not in told


def many(count: int, first: int = 100) -> list[str]:
    """`count` synthetic fødselsnumre born as PERSON was, from the individual number `first` on."""
    numbers = (compose_identity_number(date(1980, 5, 17), i, synthetic=True) for i in range(first, 1000))
    return [n for n in numbers if n][:count]


def hold(aws: boto3.Session, stack: Stack, run: str, as_of: str = days_ago(1), file: str = "a file") -> None:
    """The table held by the import `run` (as the tool holds it before it writes)."""
    register = DynamoDbPopulationRegister(aws.client("dynamodb"), stack.refs["PopulationRegisterTable"])
    register.hold_export(date.fromisoformat(as_of), run=run, file=file, older=True)


def test_an_import_cut_short_is_taken_up_from_a_line_of_the_same_file_only(
    aws: boto3.Session, stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Taken up from the line it was told, a run writes everyone. Lines skipped of another file (a newer
    export, the operator's mistake) would be left as an older one has them, unseen: refused."""
    numbers = many(30, 530)
    persons, other = tmp_path / "persons.jsonl", tmp_path / "other.jsonl"
    persons.write_text("".join(f"{line(n)}\n" for n in numbers))
    other.write_text("".join(f"{line(n)}\n" for n in numbers[:29]))
    with injected_faults() as faults:  # the second batch (lines 26 to 30) fails
        faults.add("dynamodb", "TransactWriteItems", where=lambda p: len(p["TransactItems"]) == 1 + 5)
        with pytest.raises(ClientError):
            imported(persons, stack, aws)
    assert "stopped: written through line 25; go on with --from-line 26" in capsys.readouterr().out
    assert count(aws, stack) == 25
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")  # another day's: refused before the file is checked (minutes, for millions)
    for refused, as_of, why in (
        (other, days_ago(1), "the import held is of another file"),
        (bad, days_ago(0), f"the import held is of the register of {days_ago(1)}"),
    ):
        assert imported(refused, stack, aws, "--from-line", "26", as_of=as_of) == 1
        assert (
            "Nothing written: --from-line takes up a run of this same file and day that was cut short, and "
            f"{why}: run it whole"
        ) in capsys.readouterr().err
        assert count(aws, stack) == 25
    assert imported(persons, stack, aws, "--from-line", "26") == 0
    assert count(aws, stack) == 30


def test_a_run_taken_up_meets_another_import_s_hold_or_one_of_no_file_and_writes_nothing(
    aws: boto3.Session, stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another import that took the table between the check of a run taken up and its hold, or a hold
    written before files were told apart (whose file is not known): the run taken up is refused."""
    persons = tmp_path / "persons.jsonl"
    persons.write_text("".join(f"{line(n)}\n" for n in many(30, 300)))
    digest = hashlib.sha256(persons.read_bytes()).hexdigest()
    hold(aws, stack, "cut short", file=digest)

    held: list[bool] = []

    def another_holds_first(params: dict[str, Any], **_: Any) -> None:
        if params.get("Item", {}).get("pk") == {"S": EXPORT_KEY} and not held:
            held.append(True)
            hold(aws, stack, "another run", file="another file")

    aws.events.register("before-parameter-build.dynamodb.PutItem", another_holds_first)
    try:
        assert imported(persons, stack, aws, "--from-line", "26") == 1
    finally:
        aws.events.unregister("before-parameter-build.dynamodb.PutItem", another_holds_first)
    assert "and the import held is of another file: run it whole" in capsys.readouterr().err
    assert count(aws, stack) == 0
    aws.client("dynamodb").put_item(  # as the tool held it before it told files apart
        TableName=stack.refs["PopulationRegisterTable"],
        Item={"pk": {"S": EXPORT_KEY}, "as_of": {"S": days_ago(1)}},
    )
    assert imported(persons, stack, aws, "--from-line", "26") == 1
    assert "the import held was written before files were told apart: run it whole" in capsys.readouterr().err
    assert count(aws, stack) == 0


@pytest.mark.parametrize("reason", ["TransactionConflict", "ThrottlingError"])
def test_a_batch_cancelled_for_a_moment_is_written_again(aws: boto3.Session, stack: Stack, reason: str) -> None:
    """Another run's hold written as a batch checks it (TransactionConflict), or the table throttled (a
    first import of millions): the batch is cancelled, and made again (botocore does not)."""
    table = stack.refs["PopulationRegisterTable"]
    hold(aws, stack, "this run")
    register = DynamoDbPopulationRegister(aws.client("dynamodb"), table)
    persons = [
        (KEYER.person_key(parse_identity_number(a_number(i), allow_synthetic=True, today=date.today())), PERSON)
        for i in (480, 490)
    ]
    paused: list[float] = []
    with injected_faults() as faults:
        faults.add(
            "dynamodb",
            "TransactWriteItems",
            code="TransactionCanceledException",
            status=400,
            reasons=(reason, "None", "None"),
            times=2,
        )
        assert register.put_held(persons, "this run", sleep=paused.append) == 2
    assert paused == [0.05, 0.1]
    assert count(aws, stack) == 2


def test_an_import_taken_over_by_another_stops_and_is_not_to_be_taken_up(
    aws: boto3.Session, stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two imports at once would each write persons over the other's (an older export's over a newer's):
    the one that held the table last writes; the other stops at its next batch, even one already on its
    way as the other took the table (its check and its writes one transaction)."""
    persons = tmp_path / "persons.jsonl"
    persons.write_text("".join(f"{line(n)}\n" for n in many(60)))
    batches: list[int] = []

    def another_holds_as_the_second_is_sent(**_: Any) -> None:
        batches.append(1)
        if len(batches) == 2:
            hold(aws, stack, "another run", as_of=days_ago(0))

    aws.events.register("before-call.dynamodb.TransactWriteItems", another_holds_as_the_second_is_sent)
    try:
        assert imported(persons, stack, aws) == 1
    finally:
        aws.events.unregister("before-call.dynamodb.TransactWriteItems", another_holds_as_the_second_is_sent)
    told = capsys.readouterr()
    took_over = f"another import, of the register of {days_ago(0)}, took the table over"
    assert f"stopped: written through line 25; {took_over}: this one is not to be taken up" in told.out
    assert f"Stopped: {took_over}" in told.err
    assert count(aws, stack) == 25


def test_an_import_stopped_by_ctrl_c_tells_the_line_to_go_on_from(aws: boto3.Session, stack: Stack) -> None:
    keyer = Keyer(load_pepper(aws.client("secretsmanager"), stack.refs["PepperSecret"]))
    hold(aws, stack, "this run")

    def interrupted() -> Iterator[Read]:
        for read in read_persons([line(n) for n in many(40)], keyer, allow_synthetic=True, today=date.today()):
            if read.at == 31:
                raise KeyboardInterrupt
            yield read

    told: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        write(
            aws.client("dynamodb"),
            stack.refs["PopulationRegisterTable"],
            interrupted(),
            run="this run",
            told=told.append,
        )
    assert told == ["stopped: written through line 25; go on with --from-line 26"]
    assert count(aws, stack) == 25


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
        (line(a_number(), msgspec.structs.replace(PERSON, given_name=" ", family_name="\t")), "a person with no name"),
        # past any item's size: told where (the register's field), never what it holds
        (line(a_number()).replace("Storgata 1", "x" * 501), "not a person (`$.person.address.street` is not"),
        (line(a_number()).replace('"address"', '"adress"'), "not a person (`$.person` is not"),
        # a key of the line's own, unknown, that reads as a path: not taken for one (nor its digits told)
        (line(a_number())[:-1] + ',"x - at `$.' + INVALID + '":1}', "not a person (the JSON is not"),
        (line(a_number())[:-1] + ',"x - at `$.kari_nordmann":1}', "not a person (the JSON is not"),
        (line(a_number())[:-1] + ',"x - at `$[17][05][80][12][34][5]":1}', "not a person (the JSON is not"),
        (line(a_number()).replace('"Storgata 1"', "1"), "not a person (`$.person.address.street` is not"),
        (line(a_number(kind=DNR), msgspec.structs.replace(PERSON, kind=DNR)), "a dnr holder is never resident"),
        (line(a_number(kind=DNR), replace(PERSON, kind=DNR, status=EMIGRATED)), "a dnr holder is never emigrated"),
    ],
)
def test_a_bad_line_writes_nothing_and_is_named_by_its_number_only(
    aws: boto3.Session, stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: tuple[str, str]
) -> None:
    bad, why = case
    persons = tmp_path / "persons.jsonl"
    persons.write_bytes(f"{line(a_number(600))}\n{bad}\n".encode(errors="surrogateescape"))
    assert imported(persons, stack, aws) == 1
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
    ceased = msgspec.structs.replace(PERSON, address=None, status=PersonStatus.CEASED)  # its number replaced
    lines = [line(a_number(610), nowhere), line(a_number(620), dead), line(a_number(630)), line(a_number(635), ceased)]
    counted = check(lines, KEYER, allow_synthetic=True, today=date.today())
    assert (counted.persons, counted.no_address) == (4, 1)


@pytest.mark.parametrize(
    "protection", [AddressProtection.STRICTLY_CONFIDENTIAL, AddressProtection.STRICTLY_CONFIDENTIAL_ABROAD]
)
def test_a_strictly_confidential_address_given_by_an_export_is_not_kept_and_is_counted_apart(
    aws: boto3.Session, stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str], protection: AddressProtection
) -> None:
    """The person is kept with their address's protection (an order is refused for it), not the address
    itself; a confidential one (fortrolig) is kept, and letters go to it."""
    abroad = ForeignAddress(("Kungsgatan 1", "111 43 Stockholm"), "Sweden", "SE")
    hidden = NorwegianAddress("Skjulestien 3", "0150", "OSLO", care_of="Hjelpesenteret")
    withheld = replace(PERSON, address_protection=protection, address=hidden, address_abroad=abroad)
    confidential = replace(PERSON, address_protection=AddressProtection.CONFIDENTIAL)
    number, other = a_number(700), a_number(710)
    persons = tmp_path / "persons.jsonl"
    persons.write_text(f"{line(number, withheld)}\n{line(other, confidential)}\n")
    assert imported(persons, stack, aws) == 0
    assert registered(aws, stack, number) == replace(PERSON, address_protection=protection, address=None)
    assert registered(aws, stack, other) == confidential
    items = aws.client("dynamodb").scan(TableName=stack.refs["PopulationRegisterTable"])["Items"]
    assert not [words for words in ("Skjulestien", "Hjelpesenteret", "Kungsgatan") if words in str(items)]
    told = capsys.readouterr().out
    assert "0 alive, their number in use, with no address a letter could go to; 1 more with a strictly" in told


def test_a_line_without_the_address_s_protection_is_refused() -> None:
    """Null where the address is not protected, but never left out: an export from a pipeline that does not
    carry it would have every strictly confidential address in it kept, and letters posted there."""
    person = msgspec.to_builtins(PERSON)
    del person["address_protection"]
    unsaid = msgspec.json.encode({"identity_number": a_number(), "person": person}).decode()
    with pytest.raises(ImportRefused, match=r"line 1: not a person \(`\$.person` is not as the register's\)"):
        list(read_persons([unsaid], KEYER, allow_synthetic=True, today=date.today()))


def test_a_postal_code_or_country_code_given_padded_or_in_lower_case_is_kept_as_the_post_reads_it() -> None:
    padded = replace(PERSON, address=NorwegianAddress("Storgata 1", " 0155 ", "OSLO"))
    abroad = ForeignAddress(("Kungsgatan 1", "111 43 Stockholm"), "Sverige", " se ")
    lower = replace(PERSON, kind=DNR, status=PersonStatus.NOT_RESIDENT, address=None, address_abroad=abroad)
    lines = [line(a_number(660), padded), line(a_number(670, DNR), lower)]
    assert check(lines, KEYER, allow_synthetic=True, today=date.today()).no_address == 0
    # a code no country has stays none: upper-cased, "ß" would be "SS"
    junk = replace(lower, address_abroad=replace(abroad, country_code="ß"))
    assert check([line(a_number(680, DNR), junk)], KEYER, allow_synthetic=True, today=date.today()).no_address == 1
    persons = [read.person for read in read_persons(lines, KEYER, allow_synthetic=True, today=date.today())]
    assert persons[0].address is not None
    assert persons[0].address.postal_code == "0155"
    assert persons[1].address_abroad is not None
    assert persons[1].address_abroad.country_code == "SE"


def test_a_fodselsnummer_holder_who_never_lived_in_norway_and_one_of_one_name_are_persons() -> None:
    """A citizen abroad given a fødselsnummer for a passport has the register's status not resident (not
    emigrated: they never lived here); a person of one name has one name blank."""
    abroad = msgspec.structs.replace(PERSON, status=PersonStatus.NOT_RESIDENT, address=None)
    one_name = msgspec.structs.replace(PERSON, given_name="")
    lines = [line(a_number(640), abroad), line(a_number(650), one_name)]
    counted = check(lines, KEYER, allow_synthetic=True, today=date.today())
    assert counted.persons == 2
    assert counted.by_status == {"not_resident": 1, "resident": 1}
    assert [replace(PERSON, given_name=blank).name for blank in ("", "\t")] == ["Importert", "Importert"]  # on a letter


def test_an_imported_person_s_letter_is_printed(driver: LetterDriver) -> None:
    """Imported with the stack's pepper, the person is found by the workflow: the letter goes to print."""
    number = a_number(700)
    persons = read_persons([line(number)], driver.local.keyer, allow_synthetic=True, today=date.today())
    table = driver.local.stack.refs["PopulationRegisterTable"]
    DynamoDbPopulationRegister(driver.dynamodb, table).hold_export(date.today(), run="this run", file="a file")
    assert write(driver.dynamodb, table, persons, run="this run") == 1
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
    hold(aws, stack, "this run")
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

    dynamodb.meta.events.register("before-call.dynamodb.TransactWriteItems", fail_one)
    with pytest.raises(ConnectionError):
        write(
            dynamodb,
            table,
            read_persons(lines, keyer, allow_synthetic=True, today=date.today()),
            run="this run",
            told=tell,
            every=1,
        )
    assert told[-1] == "stopped: written through line 25; go on with --from-line 26"
    # taken up from there, and stopped again at its first write: still through line 25, not "line 0"
    failing.append(3)
    persons = read_persons(lines, keyer, allow_synthetic=True, today=date.today())
    with pytest.raises(ConnectionError):
        write(dynamodb, table, (p for p in persons if p.at >= 26), run="this run", told=tell, every=1, from_line=26)
    assert told[-1] == "stopped: written through line 25; go on with --from-line 26"
    dynamodb.meta.events.unregister("before-call.dynamodb.TransactWriteItems", fail_one)
    persons = read_persons(lines, keyer, allow_synthetic=True, today=date.today())
    assert (
        write(dynamodb, table, (p for p in persons if p.at >= 26), run="this run", told=tell, every=1, from_line=26)
        == 35
    )
    assert told[-1] == "written through line 50 (25 persons); go on with --from-line 51"
    assert count(aws, stack) == 60


def test_an_export_older_than_the_one_imported_is_refused(
    aws: boto3.Session, stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Written over a newer export, an older one would bring back what the register changed since: the
    dead alive again, a letter to an address the person left. Refused, unless the operator says it undoes
    a bad import; the same day's again (a run taken up) is written."""
    number = a_number(705)
    moved = msgspec.structs.replace(PERSON, address=NorwegianAddress("Nygata 2", "5003", "BERGEN"))
    newer, older = tmp_path / "newer.jsonl", tmp_path / "older.jsonl"
    newer.write_text(line(number, moved) + "\n")
    older.write_text(line(number) + "\n")
    assert imported(newer, stack, aws, as_of=days_ago(1)) == 0
    assert imported(older, stack, aws, as_of=days_ago(30)) == 1
    assert f"Nothing written: the table holds the register of {days_ago(1)}, newer" in capsys.readouterr().err
    assert registered(aws, stack, number) == moved
    assert imported(newer, stack, aws, as_of=days_ago(1)) == 0  # the same export again
    assert imported(older, stack, aws, "--replacing-newer", as_of=days_ago(30)) == 0
    assert registered(aws, stack, number) == PERSON
    assert imported(older, stack, aws, as_of=days_ago(30)) == 0  # the table holds it now
    assert imported(newer, stack, aws, as_of=days_ago(1)) == 0
    assert registered(aws, stack, number) == moved
    capsys.readouterr()
    # told before the file is checked (the check of millions takes minutes): its bad line is not reached
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    assert imported(bad, stack, aws, as_of=days_ago(30)) == 1
    assert "Nothing written: the table holds the register of" in capsys.readouterr().err
    # nor is a day after today taken (a typo, that would hold off every import after it as older)
    assert imported(newer, stack, aws, as_of=days_ago(-1)) == 1
    assert f"Nothing written: the export's date, {days_ago(-1)}, is after today" in capsys.readouterr().err
    assert registered(aws, stack, number) == moved


@pytest.mark.parametrize("case", [("yes\n", 1), ("y\n", 0), ("", 0)])
def test_the_counts_are_told_and_the_operator_asked_before_anything_is_written(
    aws: boto3.Session, stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: tuple[str, int]
) -> None:
    """A file whose columns are shifted (everyone deceased, say) shows in the counts: nothing is written
    until the operator says yes (no answer: no), and a refused import leaves no export's date either."""
    persons = tmp_path / "persons.jsonl"
    answer, written = case
    persons.write_text(line(a_number(712)) + "\n")
    args = [str(persons), *where(stack), "--allow-synthetic", "--as-of", days_ago(1)]
    with pytest.MonkeyPatch.context() as patched:  # the operator's answer, typed (or none: the input ended)
        patched.setattr("sys.stdin", io.StringIO(answer))
        assert main(args, aws) == (0 if written else 1)
    assert "1 persons checked: 1 resident" in capsys.readouterr().out
    assert count(aws, stack) == written
    held = aws.client("dynamodb").get_item(
        TableName=stack.refs["PopulationRegisterTable"], Key={"pk": {"S": EXPORT_KEY}}
    )
    assert ("Item" in held) == bool(written)


def test_a_line_that_changed_since_the_check_stops_the_writing(aws: boto3.Session, stack: Stack) -> None:
    """The lines read again for writing are no longer the ones checked (a line now bad): the writing stops
    there, telling through which line everything is written, and to import the file again whole (a run
    taken up with --from-line is refused on another file's digest)."""
    numbers = [n for i in range(100, 1000) if (n := compose_identity_number(date(1980, 5, 17), i, synthetic=True))]
    lines = [line(n) for n in numbers[:30]] + ["not json"]
    keyer = Keyer(load_pepper(aws.client("secretsmanager"), stack.refs["PepperSecret"]))
    told: list[str] = []
    persons = read_persons(lines, keyer, allow_synthetic=True, today=date.today())
    hold(aws, stack, "this run")
    with pytest.raises(ImportRefused, match="line 31"):
        write(aws.client("dynamodb"), stack.refs["PopulationRegisterTable"], persons, run="this run", told=told.append)
    assert told == ["stopped: written through line 25; the file is not the one checked: import it again, whole"]
    assert count(aws, stack) == 25


def test_a_file_that_changes_while_it_is_written_stops_the_writing_before_its_changed_lines(
    aws: boto3.Session, stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Still being copied, or rewritten in place, after its check: what the file now holds was never
    checked, nor counted for the operator. The writing stops at the first line read after the change."""
    persons = tmp_path / "persons.jsonl"
    persons.write_text("".join(f"{line(n)}\n" for n in many(40, 540)))

    def changed(**_: Any) -> None:  # after the first batch is written: a line more, copied in
        with persons.open("a") as more:
            more.write(f"{line(a_number(700))}\n")

    aws.events.register_first("after-call.dynamodb.TransactWriteItems", changed, unique_id="file-changed")
    try:
        assert imported(persons, stack, aws) == 1
    finally:
        aws.events.unregister("after-call.dynamodb.TransactWriteItems", unique_id="file-changed")
    told = capsys.readouterr()
    assert "stopped: written through line 25; the file is not the one checked: import it again, whole" in told.out
    assert told.err.startswith("Stopped: the file changed since it was checked: import it again, whole")
    assert count(aws, stack) == 25


def test_a_file_cut_short_once_its_last_line_was_read_is_not_taken_for_written_whole(
    aws: boto3.Session, stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rewritten shorter while its last batch is written, after every line was read: the file's end is
    checked too, and the run stops, not told "written" as though the file had been written whole."""
    persons = tmp_path / "persons.jsonl"
    lines = [f"{line(n)}\n" for n in many(25, 600)]
    persons.write_text("".join(lines))

    def cut_short(**_: Any) -> None:
        persons.write_text("".join(lines[:10]))

    aws.events.register_first("after-call.dynamodb.TransactWriteItems", cut_short, unique_id="cut-short")
    try:
        assert imported(persons, stack, aws) == 1
    finally:
        aws.events.unregister("after-call.dynamodb.TransactWriteItems", unique_id="cut-short")
    assert "stopped: written through line 25; the file is not the one checked" in capsys.readouterr().out


def test_a_pipe_is_refused_before_anything_is_read(
    aws: boto3.Session, stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The file is read twice (checked, then written, from its start): a pipe (`<(zcat export.gz)`) cannot
    be, and is refused with a word, not a traceback (nor waited on for a writer); so is a path mistyped."""
    pipe = tmp_path / "persons.pipe"
    os.mkfifo(pipe)
    done = threading.Event()

    def writer() -> None:  # a pipe's other end, for each time the tool opens it (else the test would wait forever)
        while not done.wait(0.05):
            with contextlib.suppress(OSError):  # (no reader: ENXIO)
                os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))

    other_end = threading.Thread(target=writer, daemon=True)
    other_end.start()
    try:
        assert imported(pipe, stack, aws) == 1
    finally:
        done.set()
        other_end.join()
    assert "is not a file (it is read twice" in capsys.readouterr().err
    assert imported(tmp_path / "persons.jsnol", stack, aws) == 1  # a path mistyped: said so, not a traceback
    assert "persons.jsnol: No such file or directory" in capsys.readouterr().err
    assert count(aws, stack) == 0


def test_lines_are_handed_on_only_while_the_file_is_as_checked(tmp_path: Path) -> None:
    """unchanged(): a line read after the file changed is not handed on; nor is the end of lines that are
    not the ones checked (their digest), though the file shows no change."""
    persons = tmp_path / "persons.jsonl"
    persons.write_bytes(b"one\ntwo\n")
    with persons.open("rb") as read:
        lines = unchanged(read, os.fstat(read.fileno()))
        assert next(lines) == b"one\n"
        with persons.open("ab") as more:
            more.write(b"three\n")
        with pytest.raises(FileChanged):
            next(lines)
    with persons.open("rb") as read:
        checked = os.fstat(read.fileno())
        assert list(unchanged(read, checked, hashlib.sha256(b"one\ntwo\nthree\n").hexdigest())) == [
            b"one\n",
            b"two\n",
            b"three\n",
        ]
        with pytest.raises(FileChanged):
            list(unchanged(read, checked, hashlib.sha256(b"one\ntwo\n").hexdigest()))


@pytest.mark.parametrize("how", ["written over", "moved over"])
def test_a_file_that_changes_while_the_operator_is_asked_is_written_as_checked_or_not_at_all(
    aws: boto3.Session, stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    """Rewritten in place while the operator reads the counts: nothing is written (the counts were not of
    it), nor held. A newer file moved over it meanwhile is not read: the file checked is the one written."""
    persons, newer = tmp_path / "persons.jsonl", tmp_path / "newer.jsonl"
    persons.write_text("".join(f"{line(n)}\n" for n in many(3, 560)))
    newer.write_text("".join(f"{line(n)}\n" for n in many(5, 570)))

    def answered(_: str) -> str:  # the operator says yes after the file changed
        if how == "moved over":
            newer.replace(persons)
        else:
            persons.write_text(newer.read_text())
        return "yes"

    args = [str(persons), *where(stack), "--allow-synthetic", "--as-of", days_ago(1)]
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr("builtins.input", answered)
        assert main(args, aws) == (0 if how == "moved over" else 1)
    assert "3 persons checked" in capsys.readouterr().out
    assert count(aws, stack) == (3 if how == "moved over" else 0)
    held = aws.client("dynamodb").get_item(
        TableName=stack.refs["PopulationRegisterTable"], Key={"pk": {"S": EXPORT_KEY}}
    )
    assert ("Item" in held) == (how == "moved over")


def test_a_batch_dynamodb_leaves_unprocessed_round_after_round_is_given_up(aws: boto3.Session, stack: Stack) -> None:
    """What DynamoDB leaves unprocessed is sent again, pausing longer each time, and given up after
    UNPROCESSED_ROUNDS (told where to go on from), rather than tried without end."""
    dynamodb, table = aws.client("dynamodb"), stack.refs["PopulationRegisterTable"]
    persons = [
        (KEYER.person_key(parse_identity_number(a_number(i), allow_synthetic=True, today=date.today())), PERSON)
        for i in (720, 730)
    ]

    def one_left(parsed: dict[str, Any], **_: Any) -> None:
        item = {"PutRequest": {"Item": {"pk": {"S": persons[0][0]}}}}
        parsed["UnprocessedItems"] = {table: [item]}

    dynamodb.meta.events.register("after-call.dynamodb.BatchWriteItem", one_left)
    paused: list[float] = []
    with pytest.raises(StillUnprocessed, match="1 of 2 persons"):
        DynamoDbPopulationRegister(dynamodb, table).put_batch(persons, sleep=paused.append)
    assert len(paused) == UNPROCESSED_ROUNDS - 1  # none after the last: given up at once
    assert paused[:3] == [0.05, 0.1, 0.2]
    assert max(paused) == 5.0
    dynamodb.meta.events.unregister("after-call.dynamodb.BatchWriteItem", one_left)
    assert DynamoDbPopulationRegister(dynamodb, table).put_batch(persons, sleep=paused.append) == 2


def test_a_batch_cancelled_for_good_with_a_moment_s_reason_beside_is_not_made_again(
    aws: boto3.Session, stack: Stack
) -> None:
    """One item's reason would never pass (a validation's): the cancel is raised at once, not tried for half a
    minute as a throttle."""
    hold(aws, stack, "this run")
    register = DynamoDbPopulationRegister(aws.client("dynamodb"), stack.refs["PopulationRegisterTable"])
    person = KEYER.person_key(parse_identity_number(a_number(480), allow_synthetic=True, today=date.today()))
    paused: list[float] = []
    with injected_faults() as faults:
        reasons = ("None", "ThrottlingError", "ValidationError")
        faults.add("dynamodb", "TransactWriteItems", code="TransactionCanceledException", status=400, reasons=reasons)
        with pytest.raises(ClientError):
            register.put_held([(person, PERSON)], "this run", sleep=paused.append)
    assert paused == []


def test_a_hold_in_conflict_with_the_running_import_s_batch_is_written_again(aws: boto3.Session, stack: Stack) -> None:
    """A put of the hold in the midst of the running import's batch (a transaction that checks it) is
    refused, TransactionConflictException, which botocore does not retry: made again once it is written."""
    register = DynamoDbPopulationRegister(aws.client("dynamodb"), stack.refs["PopulationRegisterTable"])
    paused: list[float] = []
    with injected_faults() as faults:
        faults.add("dynamodb", "PutItem", code="TransactionConflictException", status=400, times=2)
        register.hold_export(date.fromisoformat(days_ago(1)), run="this run", file="a file", sleep=paused.append)
    assert paused == [0.05, 0.1]
    held = register.held_export()
    assert held is not None
    assert held.run == "this run"


def test_an_import_that_meets_a_newer_hold_at_its_own_is_told_of_it(
    aws: boto3.Session, stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another import of a newer export held the table while this one's file was checked: refused as an
    older export, with the way to write it all the same."""
    persons = tmp_path / "persons.jsonl"
    persons.write_text(line(a_number(310)) + "\n")
    held: list[bool] = []

    def a_newer_held_first(params: dict[str, Any], **_: Any) -> None:
        if params.get("Item", {}).get("pk") == {"S": EXPORT_KEY} and not held:
            held.append(True)
            hold(aws, stack, "another run", as_of=days_ago(0))

    aws.events.register("before-parameter-build.dynamodb.PutItem", a_newer_held_first)
    try:
        assert imported(persons, stack, aws, as_of=days_ago(1)) == 1
    finally:
        aws.events.unregister("before-parameter-build.dynamodb.PutItem", a_newer_held_first)
    assert f"Nothing written: the table holds the register of {days_ago(0)}, newer" in capsys.readouterr().err
    assert count(aws, stack) == 0


def test_a_batch_cancelled_for_no_reason_told_is_taken_up_as_any_failure(aws: boto3.Session, stack: Stack) -> None:
    """A cancel that names no reason reads as the hold's condition failing; the table still this run's, it
    is not taken for another import's: the line to go on from is told."""
    keyer = Keyer(load_pepper(aws.client("secretsmanager"), stack.refs["PepperSecret"]))
    hold(aws, stack, "this run")
    persons = read_persons([line(n) for n in many(30)], keyer, allow_synthetic=True, today=date.today())
    told: list[str] = []
    with injected_faults() as faults:
        faults.add("dynamodb", "TransactWriteItems", code="TransactionCanceledException", status=400)
        with pytest.raises(HoldLost):
            write(
                aws.client("dynamodb"), stack.refs["PopulationRegisterTable"], persons, run="this run", told=told.append
            )
    assert told == ["stopped: written through line 0; go on with --from-line 1"]
