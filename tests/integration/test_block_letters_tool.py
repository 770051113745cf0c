"""User support's block of a person's PIN letters (tools/block_letters.py), on moto: for one who cannot
log in to block them."""

from __future__ import annotations

import contextlib
import io
import json
import os
import unicodedata
import zipfile
from datetime import timedelta

import boto3
import pytest
from moto import mock_aws

from local.faults import injected_faults
from local.population_seed import Category
from minid.adapters.dynamodb import to_item
from minid.domain.errors import InvalidIdentityNumber
from minid.domain.keys import PersonKey
from minid.domain.letters.model import LetterStatus
from tests.integration.letters import LetterDriver, age_ledger, security_events
from tests.integration.users import enrolled, with_letter
from tools.block_letters import Blocking, asked_family_name, environment_of, main


def run(driver: LetterDriver, number: str, capsys: pytest.CaptureFixture[str], name: str = "") -> tuple[int, str]:
    """The tool run for the local stack (its functions' environment, as `--stack` reads the deployed
    PinLettersFunction's), the number typed in, then `name` as the caller's family name."""
    capsys.readouterr()
    code = main(
        ["--stack", "minid-local"],
        environment=lambda _: dict(os.environ),
        ask=lambda: f" {number}\n",
        ask_name=lambda: name,
    )
    out, err = capsys.readouterr()
    assert number not in out + err  # never printed back
    with contextlib.suppress(InvalidIdentityNumber):  # a number that is none has no key
        assert driver.key(number) not in out + err  # nor its key
    if name:
        assert name not in out + err  # nor the name
    return code, told(out)


def told(out: str) -> str:
    """What the tool said: its one line through its logger (the local stack's functions log and count to
    the same output)."""
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    said = [line["message"] for line in lines if line.get("service") == "minid-support"]
    assert len(said) == 1, out
    return str(said[0])


def test_support_blocks_the_letter_of_one_not_yet_a_user_who_lost_it(
    driver: LetterDriver, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not a MinID user, so no login to block with: whoever found the letter could enrol with it. The
    caller's family name is checked against the register's before anything is blocked, and neither shown."""
    enrolling = with_letter(driver)
    person = enrolling.person
    for wrong in ("", "Someone Else"):  # none given (the input ended), or not the register's
        declined = run(driver, person.identity_number, capsys, name=wrong)
        assert declined == (1, "The name is not the population register's for this number. Nothing blocked.")
    assert driver.only_letter(person.identity_number).status is LetterStatus.DISPATCHED
    name = f"  {person.person.family_name.upper()} "  # as typed: case and spaces aside
    code, said = run(driver, person.identity_number, capsys, name=name)
    assert (code, said) == (0, "1 letter(s) blocked now; the person is told on their contacts, if they have any.")
    assert driver.only_letter(person.identity_number).status is LetterStatus.BLOCKED
    enrolling.start()  # answered alike for everyone
    assert enrolling.complete().status == 401  # the found letter's codes no longer work
    events = security_events(driver).page(driver.key(person.identity_number), None, 100).events
    assert [e.detail for e in events if e.type.value == "pin-letter-blocked"] == [{"by": "support"}]


def test_support_blocks_the_letter_of_one_the_register_has_by_one_name_alone(
    driver: LetterDriver, capsys: pytest.CaptureFixture[str]
) -> None:
    """The import takes a person with either name blank (one name alone, as some D-number holders have):
    their one name is the one checked. Of a person with both, the given name alone names no one."""
    enrolling = with_letter(driver)
    person = enrolling.person
    given = person.person.given_name
    declined = run(driver, person.identity_number, capsys, name=given)
    assert declined == (1, "The name is not the population register's for this number. Nothing blocked.")
    driver.dynamodb.update_item(
        TableName=driver.local.stack.refs["PopulationRegisterTable"],
        Key=to_item({"pk": driver.key(person.identity_number)}),
        UpdateExpression="SET family_name = :blank",
        ExpressionAttributeValues=to_item({":blank": ""}),
    )
    for wrong in ("", person.person.family_name):
        declined = run(driver, person.identity_number, capsys, name=wrong)
        assert declined == (1, "The name is not the population register's for this number. Nothing blocked.")
    code, said = run(driver, person.identity_number, capsys, name=given.lower())
    assert (code, said) == (0, "1 letter(s) blocked now; the person is told on their contacts, if they have any.")
    assert driver.only_letter(person.identity_number).status is LetterStatus.BLOCKED


def test_support_blocks_a_user_s_letter_and_the_person_is_told(
    driver: LetterDriver, capsys: pytest.CaptureFixture[str]
) -> None:
    """A user whose second factor is the letter (no mobile, no app) lost it: the block is told on their
    contacts as support's, so that a block made on someone else's call is seen."""
    user = enrolled(driver, mobile=None, email="mistet.brevet@example.no")
    name = user.enrolling.person.person.family_name
    code, _ = run(driver, user.identity_number, capsys, name=name)
    assert code == 0
    assert driver.only_letter(user.identity_number).status is LetterStatus.BLOCKED
    driver.notices_delivered()
    told = [m["body"] for m in driver.local.outbox.emails() if m["to"] == "mistet.brevet@example.no"]
    assert len([b for b in told if "sperret av brukerstøtten" in b and "Ba du ikke om det" in b]) == 1
    code, said = run(driver, user.identity_number, capsys, name=name)  # again: nothing more to block
    assert (code, said) == (
        0,
        "No letter whose codes work or may come to work: nothing blocked (1 blocked before).",
    )


def test_support_blocks_a_posted_letter_and_one_at_the_printer_and_the_person_is_told_once(
    driver: LetterDriver, capsys: pytest.CaptureFixture[str]
) -> None:
    user = enrolled(driver, mobile=None, email="to.brev@example.no")
    age_ledger(driver, user.identity_number, timedelta(days=2))  # a new letter may be ordered
    assert driver.order(user.identity_number).status == 202
    printing = driver.next_print_job()["letter_id"]
    code, said = run(driver, user.identity_number, capsys, name=user.enrolling.person.person.family_name)
    assert (code, said) == (0, "2 letter(s) blocked now; the person is told on their contacts, if they have any.")
    letters = {letter.letter_id: letter.status for letter in driver.letters_of(user.identity_number)}
    assert letters[printing] is LetterStatus.BLOCKED
    assert set(letters.values()) == {LetterStatus.BLOCKED}
    driver.notices_delivered()
    told = [m["body"] for m in driver.local.outbox.emails() if m["to"] == "to.brev@example.no"]
    assert len([b for b in told if "sperret av brukerstøtten" in b]) == 1  # once, for both
    events = security_events(driver).page(driver.key(user.identity_number), None, 100).events
    assert [e.detail for e in events if e.type.value == "pin-letter-blocked"] == [{"by": "support"}] * 2


def test_a_block_that_fails_midway_says_so_and_is_finished_by_running_the_tool_again(
    driver: LetterDriver, capsys: pytest.CaptureFixture[str]
) -> None:
    """DynamoDB failing past the SDK's retries at the second letter's block: told as a failure by its
    type (not a traceback, not a message that may quote what was sent), and a run again blocks the rest."""
    user = enrolled(driver, mobile=None, email="to.brev.feil@example.no")
    age_ledger(driver, user.identity_number, timedelta(days=2))
    assert driver.order(user.identity_number).status == 202
    printing = driver.next_print_job()["letter_id"]
    name = user.enrolling.person.person.family_name
    with injected_faults() as faults:
        faults.add(
            "dynamodb",
            "TransactWriteItems",
            code="ProvisionedThroughputExceededException",
            status=400,
            times=10,
            here=True,
            where=lambda params: printing in json.dumps(params),
        )
        code, said = run(driver, user.identity_number, capsys, name=name)
    assert faults.injected
    assert code == 1
    assert said.startswith("The block failed (ClientError): run the tool again.")
    letters = {letter.letter_id: letter.status for letter in driver.letters_of(user.identity_number)}
    assert letters[printing] is not LetterStatus.BLOCKED
    left = sum(status is not LetterStatus.BLOCKED for status in letters.values())
    code, said = run(driver, user.identity_number, capsys, name=name)
    assert (code, said) == (0, f"{left} letter(s) blocked now; the person is told on their contacts, if they have any.")
    letters = {letter.letter_id: letter.status for letter in driver.letters_of(user.identity_number)}
    assert set(letters.values()) == {LetterStatus.BLOCKED}


def test_support_is_told_of_a_number_that_is_none_and_of_a_person_with_no_letter(
    driver: LetterDriver, capsys: pytest.CaptureFixture[str]
) -> None:
    code, said = run(driver, "12345678901", capsys)
    assert code == 1
    assert said.startswith("That is no identity number: The identity number has a typing error")
    person = driver.person(Category.ADULT)
    assert run(driver, person.identity_number, capsys, name=person.person.family_name) == (
        0,
        "No letter whose codes work or may come to work: nothing blocked (0 blocked before).",
    )


def test_a_number_given_as_an_argument_is_refused_and_not_echoed(
    driver: LetterDriver, capsys: pytest.CaptureFixture[str]
) -> None:
    number = with_letter(driver).person.identity_number
    capsys.readouterr()
    asked: list[str] = []

    def ask() -> str:
        asked.append("asked")
        return number

    code = main(["--stack", "minid-local", number], environment=lambda _: dict(os.environ), ask=ask)
    out, err = capsys.readouterr()
    assert code == 2
    assert told(out) == "The identity number is asked for, not given as an argument: nothing blocked."
    assert number not in out + err
    assert asked == []  # nothing asked, nothing done
    assert driver.only_letter(number).status is LetterStatus.DISPATCHED


def test_the_deployed_function_s_environment_is_read_from_its_configuration() -> None:
    """`--stack`: the environment of the function the stack names, on moto's Lambda."""
    with mock_aws():
        session = boto3.Session(region_name="eu-north-1")
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ],
        }
        role = session.client("iam").create_role(
            RoleName="minid-pin-letters", AssumeRolePolicyDocument=json.dumps(trust)
        )
        session.client("lambda").create_function(
            FunctionName="minid-PinLettersFunction-x",
            Runtime="python3.13",
            Role=role["Role"]["Arn"],
            Handler="app.handler",
            Code={"ZipFile": zipped("def handler(event, context): pass")},
            Environment={"Variables": {"PIN_LETTERS_TABLE": "the-letters", "ALLOW_SYNTHETIC": "false"}},
        )
        environment = environment_of(session.client("lambda"), "minid-PinLettersFunction-x")
    assert environment == {"PIN_LETTERS_TABLE": "the-letters", "ALLOW_SYNTHETIC": "false"}


def zipped(source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", source)
    return buffer.getvalue()


@pytest.mark.parametrize("ended", [EOFError, KeyboardInterrupt])
def test_no_answer_for_the_name_is_none(monkeypatch: pytest.MonkeyPatch, ended: type[BaseException]) -> None:
    """The number piped in, and the input ended before the name (or Ctrl-C): no name, so nothing blocked."""

    def no_answer(_: str) -> str:
        raise ended

    monkeypatch.setattr("builtins.input", no_answer)
    assert asked_family_name() == ""
    monkeypatch.setattr("builtins.input", lambda _: "Nordmann")
    assert asked_family_name() == "Nordmann"


def test_a_number_not_in_the_register_blocks_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    """No family name to check the caller's against: support is told so, and nothing is blocked."""
    blocking = Blocking(PersonKey("a" * 64), None)
    assert not blocking.named("")
    assert not blocking.named("Nordmann")
    assert Blocking(PersonKey("a" * 64), "Nordmann Berg").named(" nordmann   BERG ")
    # an export's name written with combining marks (NFD: "a" and a ring; "Ø" has no such form) is the name
    # typed at a terminal (NFC), and a hyphen is a space: else support could not block the caller's letters
    decomposed = unicodedata.normalize("NFD", "Ødegård-Berg")
    assert decomposed != "Ødegård-Berg"
    assert Blocking(PersonKey("a" * 64), decomposed).named("ødegård berg")
    assert Blocking(PersonKey("a" * 64), "Ødegård Berg").named(unicodedata.normalize("NFD", "Ødegård-Berg"))
    assert not Blocking(PersonKey("a" * 64), decomposed).named("Odegard Berg")  # a letter is not its base
    assert "Nordmann" not in repr(Blocking(PersonKey("a" * 64), "Nordmann"))
    assert not Blocking(PersonKey("a" * 64), " ").named("")  # a blank register name: no answer names no one
