"""User support's block of a person's PIN letters (tools/block_letters.py), on moto: for one who cannot
log in to block them."""

from __future__ import annotations

import contextlib
import io
import json
import os
import zipfile
from collections.abc import Callable
from datetime import timedelta

import boto3
import pytest
from moto import mock_aws

from local.population_seed import Category
from minid.domain.errors import InvalidIdentityNumber
from minid.domain.letters.model import LetterStatus
from tests.integration.letters import LetterDriver, age_ledger, security_events
from tests.integration.users import enrolled, with_letter
from tools.block_letters import confirmed, environment_of, main

TOLD = (
    "1 letter(s) blocked",
    "2 letter(s) blocked",
    "No letter whose",
    "That is no identity number",
    "The identity number is asked",
    "Nothing blocked.",
)


def run(
    driver: LetterDriver,
    number: str,
    capsys: pytest.CaptureFixture[str],
    confirm: Callable[[str], bool] = lambda _: True,
) -> tuple[int, str]:
    """The tool run for the local stack (its functions' environment, as `--stack` reads the deployed
    PinLettersFunction's), the number typed in, and what support is asked answered by `confirm`."""
    capsys.readouterr()
    code = main(
        ["--stack", "minid-local"], environment=lambda _: dict(os.environ), ask=lambda: f" {number}\n", confirm=confirm
    )
    out, err = capsys.readouterr()
    assert number not in out + err  # never printed back
    with contextlib.suppress(InvalidIdentityNumber):  # a number that is none has no key
        assert driver.key(number) not in out + err  # nor its key
    # what the tool says (the local stack's functions log and count to the same output)
    said = [line for line in (out + err).splitlines() if line.startswith(TOLD)]
    assert len(said) == 1, out + err
    return code, said[0]


def test_support_blocks_the_letter_of_one_not_yet_a_user_who_lost_it(
    driver: LetterDriver, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not a MinID user, so no login to block with: whoever found the letter could enrol with it. Support
    is shown whose letters they are, to check with the caller, before anything is blocked."""
    enrolling = with_letter(driver)
    person = enrolling.person
    asked: list[str] = []

    def declined_by_support(question: str) -> bool:
        asked.append(question)
        return False

    declined = run(driver, person.identity_number, capsys, confirm=declined_by_support)
    assert declined == (1, "Nothing blocked.")
    assert asked == [f"Block the PIN letters of {person.person.name}, born {person.person.birth_date.year}?"]
    assert driver.only_letter(person.identity_number).status is LetterStatus.DISPATCHED
    code, said = run(driver, person.identity_number, capsys)
    assert (code, said) == (0, "1 letter(s) blocked now; the person is told on their contacts, if they have any.")
    assert driver.only_letter(person.identity_number).status is LetterStatus.BLOCKED
    enrolling.start()  # answered alike for everyone
    assert enrolling.complete().status == 401  # the found letter's codes no longer work
    events = security_events(driver).page(driver.key(person.identity_number), None, 100).events
    assert [e.detail for e in events if e.type.value == "pin-letter-blocked"] == [{"by": "support"}]


def test_support_blocks_a_user_s_letter_and_the_person_is_told(
    driver: LetterDriver, capsys: pytest.CaptureFixture[str]
) -> None:
    """A user whose second factor is the letter (no mobile, no app) lost it: the block is told on their
    contacts as support's, so that a block made on someone else's call is seen."""
    user = enrolled(driver, mobile=None, email="mistet.brevet@example.no")
    code, _ = run(driver, user.identity_number, capsys)
    assert code == 0
    assert driver.only_letter(user.identity_number).status is LetterStatus.BLOCKED
    driver.notices_delivered()
    told = [m["body"] for m in driver.local.outbox.emails() if m["to"] == "mistet.brevet@example.no"]
    assert len([b for b in told if "sperret av brukerstøtten" in b and "Ba du ikke om det" in b]) == 1
    code, said = run(driver, user.identity_number, capsys)  # again: nothing more to block
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
    code, said = run(driver, user.identity_number, capsys)
    assert (code, said) == (0, "2 letter(s) blocked now; the person is told on their contacts, if they have any.")
    letters = {letter.letter_id: letter.status for letter in driver.letters_of(user.identity_number)}
    assert letters[printing] is LetterStatus.BLOCKED
    assert set(letters.values()) == {LetterStatus.BLOCKED}
    driver.notices_delivered()
    told = [m["body"] for m in driver.local.outbox.emails() if m["to"] == "to.brev@example.no"]
    assert len([b for b in told if "sperret av brukerstøtten" in b]) == 1  # once, for both
    events = security_events(driver).page(driver.key(user.identity_number), None, 100).events
    assert [e.detail for e in events if e.type.value == "pin-letter-blocked"] == [{"by": "support"}] * 2


def test_support_is_told_of_a_number_that_is_none_and_of_a_person_with_no_letter(
    driver: LetterDriver, capsys: pytest.CaptureFixture[str]
) -> None:
    code, said = run(driver, "12345678901", capsys)
    assert code == 1
    assert said.startswith("That is no identity number: The identity number has a typing error")
    person = driver.person(Category.ADULT)
    assert run(driver, person.identity_number, capsys) == (
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
    assert "The identity number is asked for, not given as an argument: nothing blocked." in err
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
def test_no_answer_to_the_question_is_a_no(monkeypatch: pytest.MonkeyPatch, ended: type[BaseException]) -> None:
    """The number piped in, and the input ended before the answer (or Ctrl-C): nothing blocked, and said."""

    def no_answer(_: str) -> str:
        raise ended

    monkeypatch.setattr("builtins.input", no_answer)
    assert confirmed("Block the PIN letters of Kari Nordmann, born 1980?") is False
    monkeypatch.setattr("builtins.input", lambda _: "ja")
    assert confirmed("Block the PIN letters of Kari Nordmann, born 1980?") is True
