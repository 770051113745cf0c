"""User support's block of a person's PIN letters (tools/block_letters.py), on moto: for one who cannot
log in to block them."""

from __future__ import annotations

import os

import pytest

from local.population_seed import Category
from minid.domain.letters.model import LetterStatus
from tests.integration.letters import LetterDriver, security_events
from tests.integration.users import enrolled, with_letter
from tools.block_letters import main


def run(driver: LetterDriver, number: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """The tool run for the local stack (its functions' environment, as `--stack` reads the deployed
    PinLettersFunction's), the number typed in."""
    capsys.readouterr()
    code = main(["--stack", "minid-local"], environment=lambda _: dict(os.environ), ask=lambda: f" {number}\n")
    out, err = capsys.readouterr()
    assert number not in out + err  # never printed back
    # what the tool says (the local stack's functions log and count to the same output)
    said = [line for line in (out + err).splitlines() if line.startswith(TOLD)]
    assert len(said) == 1, out + err
    return code, said[0]


TOLD = ("1 letter(s) blocked", "No letter whose", "That is no identity number", "The identity number is asked")


def test_support_blocks_the_letter_of_one_not_yet_a_user_who_lost_it(
    driver: LetterDriver, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not a MinID user, so no login to block with: whoever found the letter could enrol with it."""
    enrolling = with_letter(driver)
    code, said = run(driver, enrolling.person.identity_number, capsys)
    assert (code, said) == (
        0,
        "1 letter(s) blocked now; the person is told on their contacts, if they have any.",
    )
    assert driver.only_letter(enrolling.person.identity_number).status is LetterStatus.BLOCKED
    enrolling.start()  # answered alike for everyone
    assert enrolling.complete().status == 401  # the found letter's codes no longer work
    person = driver.key(enrolling.person.identity_number)
    assert "pin-letter-blocked" in [e.type.value for e in security_events(driver).page(person, None, 100).events]


def test_support_blocks_a_user_s_letter_and_the_person_is_told(
    driver: LetterDriver, capsys: pytest.CaptureFixture[str]
) -> None:
    """A user whose second factor is the letter (no mobile, no app) lost it: the block is theirs as if made
    by them, and told on their contacts, so that a block made on someone else's call is seen."""
    user = enrolled(driver, mobile=None, email="mistet.brevet@example.no")
    code, _ = run(driver, user.identity_number, capsys)
    assert code == 0
    assert driver.only_letter(user.identity_number).status is LetterStatus.BLOCKED
    driver.notices_delivered()
    told = [m["body"] for m in driver.local.outbox.emails() if m["to"] == "mistet.brevet@example.no"]
    assert len([b for b in told if "slik du ba om" in b]) == 1
    code, said = run(driver, user.identity_number, capsys)  # again: nothing more to block
    assert (code, said) == (
        0,
        "No letter whose codes work or may come to work: nothing blocked (1 blocked before).",
    )


def test_support_is_told_of_a_number_that_is_none_and_of_a_person_with_no_letter(
    driver: LetterDriver, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(driver, "12345678901", capsys) == (
        1,
        "That is no identity number (11 digits, with check digits that hold): nothing blocked.",
    )
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
