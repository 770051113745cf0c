"""Block a person's PIN letters, for MinID user support: for one who cannot log in to block them.

`POST /v1/me/pin-letters/block` needs a login, and one who has lost the letter may have no other way in
(no verified mobile and no authenticator app: the letter's PIN codes are their second factor), or is no
MinID user yet; meanwhile whoever holds the letter can enrol with it, until a new letter is posted. The
letter and the notices send them to user support, which, once it has made sure who is calling (that is
support's to do: nothing here can), blocks the letters with this:

    .venv/bin/python -m tools.block_letters --stack <stack name>

It asks for the identity number (read without echo at a terminal, else the first line of standard
input; never an argument, which the shell's history and the process list would keep), then for the
family name the caller gives (or the one name of a person the register has by one name alone), which it
checks against the population register's (a number mistyped unseen, or taken from another call, would
block a stranger's letters; no answer, or Ctrl-C, blocks nothing), and blocks the active letter and any
on its way, as the route does: the same block, its event in the person's history and a notice on their
contacts, each saying that support made it ("blocked by user support at your request"), so that a block
made on someone else's call is seen. What it tells goes through the functions' logger, masked as theirs
is: how many letters it blocked, never the number, the register's name or anything else of the person.

Run it from the commit the stack was deployed from (the deployed notifier words the notice). It runs as
the deployed PinLettersFunction does, with its environment (read from the function's configuration:
`lambda:GetFunctionConfiguration`) and so with the stack's pepper (`secretsmanager:GetSecretValue`),
held in memory while it runs: run it as the import is run (tools/import_population.py), from a hardened
host, with the role the stack names `PepperOperatorRoleArn` (the secret's own policy refuses any other).
"""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import boto3
from aws_lambda_powertools import Logger

from minid import wiring
from minid.adapters.clock import SystemClock
from minid.adapters.dynamodb import from_item, to_item
from minid.domain.errors import InvalidIdentityNumber
from minid.domain.identity import IdentityNumber, parse_identity_number
from minid.domain.keys import PersonKey
from minid.domain.letters.model import LetterStatus
from minid.domain.time import today_in_norway
from minid.observability import MaskingFormatter
from minid.settings import PinLetterSettings
from minid.values import Value
from minid.wiring import PinLetterServices

PIN_LETTERS_FUNCTION = "PinLettersFunction"  # the template's logical id


class Blocking(Value, frozen=True):
    """Whose letters a block would stop, and the name the caller must give before it is made."""

    __hidden__ = frozenset({"person", "name"})  # left out of repr

    person: PersonKey
    # the register's family name; for a person it has by one name alone (the import takes either name
    # blank), that name. None: not in the register
    name: str | None

    def named(self, given: str) -> bool:
        """Whether `given` is the register's name (case, spaces between its parts, a hyphen for a space,
        and how its letters are encoded aside). No name given (the input ended) names no one, even one whose
        register has no name."""
        return self.name is not None and _folded(given) != "" and _folded(given) == _folded(self.name)


def _folded(name: str) -> str:
    """The name as compared: its letters composed (NFC: "å" typed at a terminal is one code point, an
    export's may be two, "a" and a ring), hyphens as spaces ("Berg-Hansen", "Berg Hansen"), then folded."""
    return " ".join(unicodedata.normalize("NFC", name).replace("-", " ").split()).casefold()


def whose(number: IdentityNumber, services: PinLetterServices, population_table: str) -> Blocking:
    """The person the number is, as the register has them."""
    person = services.keyer.person_key(number)
    # the names alone: nothing else of the person is checked, or read
    item = (
        wiring.client("dynamodb")
        .get_item(
            TableName=population_table, Key=to_item({"pk": person}), ProjectionExpression="family_name, given_name"
        )
        .get("Item")
    )
    if item is None:
        return Blocking(person, None)
    names = from_item(item)
    family, given = names.get("family_name") or "", names.get("given_name") or ""
    return Blocking(person, family if family.strip() else given)


def block_letters(blocking: Blocking, services: PinLetterServices) -> tuple[int, int]:
    """The person's letters blocked (those whose codes work or may come to work), as the route blocks them,
    by support (so the person's history and the notice say): how many blocks this made, and how many of
    the person's letters are blocked in all (before too)."""
    letters, made = services.account.blocked_by(blocking.person, support=True)
    return made, sum(letter.status is LetterStatus.BLOCKED for letter in letters)


def function_environment(session: boto3.Session, stack: str) -> dict[str, str]:
    """The deployed PinLettersFunction's environment variables."""
    found = session.client("cloudformation").describe_stack_resource(
        StackName=stack, LogicalResourceId=PIN_LETTERS_FUNCTION
    )
    return environment_of(session.client("lambda"), found["StackResourceDetail"]["PhysicalResourceId"])


def environment_of(functions: Any, name: str) -> dict[str, str]:  # (a Lambda client: no type stubs for it here)
    """A function's environment variables, from its configuration."""
    configuration = functions.get_function_configuration(FunctionName=name)
    return dict(configuration["Environment"]["Variables"])


def asked_number() -> str:
    """The identity number, without echo at a terminal; else the first line of standard input."""
    if sys.stdin.isatty():
        return getpass.getpass("Identity number (not shown): ")
    return sys.stdin.readline()


def asked_family_name() -> str:
    """The family name the caller gives, as support types it; none when the input ended, or on Ctrl-C."""
    try:
        return input("The caller's family name (one who has one name alone: that name), as they give it: ")
    except (EOFError, KeyboardInterrupt):
        return ""


class _CurrentStdout(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to standard output as it is when a line is written, not as it was when the logger was made
    (Powertools keeps the first handler of a service's logger for good): a tool run again in one process,
    its output redirected meanwhile, still writes where its output now goes."""

    @property
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


def support_logger() -> Logger:
    """The tool's logger: the functions' masking formatter (observability.MaskingFormatter), its own service."""
    return Logger(service="minid-support", logger_formatter=MaskingFormatter(), logger_handler=_CurrentStdout())


def main(
    argv: Sequence[str] | None = None,
    *,
    environment: Callable[[str], Mapping[str, str]] | None = None,
    ask: Callable[[], str] = asked_number,
    ask_name: Callable[[], str] = asked_family_name,
) -> int:
    log = support_logger()
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--stack", required=True, help="the deployed stack's name")
    args, extra = parser.parse_known_args(argv)
    if extra:  # the number typed as an argument, perhaps: not echoed, as argparse's own refusal would
        log.warning("The identity number is asked for, not given as an argument: nothing blocked.")
        return 2
    environ = (environment or (lambda stack: function_environment(boto3.Session(), stack)))(args.stack)
    settings = PinLetterSettings.from_environ(environ)
    try:
        number = parse_identity_number(
            ask().strip(),
            allow_synthetic=settings.allow_synthetic_identity_numbers,
            today=today_in_norway(SystemClock()),
        )
    except InvalidIdentityNumber as invalid:  # its reason holds nothing of the number
        reasons = " ".join(error.message for error in invalid.errors)
        log.warning(f"That is no identity number: {reasons} Nothing blocked.")
        return 1
    services = wiring.pin_letters(environ)  # the pepper loaded once, for the key and the block
    blocking = whose(number, services, environ["POPULATION_REGISTER_TABLE"])
    # a number mistyped (unseen) or taken from another call would block a stranger's letters: the caller's
    # family name is checked against the register's, and neither is shown
    if blocking.name is None:
        log.warning("The number is not in the population register: nothing to check the name by. Nothing blocked.")
        return 1
    if not blocking.named(ask_name()):
        log.warning("The name is not the population register's for this number. Nothing blocked.")
        return 1
    return blocked_and_told(blocking, services, log)


def blocked_and_told(blocking: Blocking, services: PinLetterServices, log: Logger) -> int:
    """The letters blocked, and what was done said: the tool's exit status."""
    try:
        made, blocked = block_letters(blocking, services)
    except Exception as error:  # AWS failing midway: its type alone (a message may quote what was sent)
        log.warning(
            f"The block failed ({type(error).__name__}): run the tool again. A letter blocked before the failure "
            "stays blocked, and the person may be told twice."
        )
        return 1
    if not made:
        log.info(f"No letter whose codes work or may come to work: nothing blocked ({blocked} blocked before).")
    else:
        log.info(f"{made} letter(s) blocked now; the person is told on their contacts, if they have any.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
