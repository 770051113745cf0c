"""Block a person's PIN letters, for MinID user support: for one who cannot log in to block them.

`POST /v1/me/pin-letters/block` needs a login, and one who has lost the letter may have no other way in
(no verified mobile and no authenticator app: the letter's PIN codes are their second factor), or is no
MinID user yet; meanwhile whoever holds the letter can enrol with it, until a new letter is posted. The
letter and the notices send them to user support, which, once it has made sure who is calling (that is
support's to do: nothing here can), blocks the letters with this:

    .venv/bin/python -m tools.block_letters --stack <stack name>

It asks for the identity number (read without echo at a terminal, else the first line of standard
input; never an argument, which the shell's history and the process list would keep), shows whose
letters they are (the population register's name and year of birth, for support to check with the
caller: a number mistyped unseen, or taken from another call, would block a stranger's letters), and on
a yes (the next line typed; none, or Ctrl-C, is a no) blocks the active letter and any on its way, as
the route does: the same block, its event in the person's history and a notice on their contacts, each
saying that support made it ("blocked by user support at your request"), so that a block made on
someone else's call is seen. It prints how many letters it blocked now, never the number.

Run it from the commit the stack was deployed from (the deployed notifier words the notice). It runs as
the deployed PinLettersFunction does, with its environment (read from the function's configuration:
`lambda:GetFunctionConfiguration`) and so with the stack's pepper (`secretsmanager:GetSecretValue`),
held in memory while it runs: run it as the import is run (tools/import_population.py), from a hardened
host, with a role granted for it alone.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Any

import boto3

from minid import wiring
from minid.adapters.clock import SystemClock
from minid.adapters.dynamodb import from_item, to_item
from minid.adapters.secrets import load_pepper
from minid.domain.errors import InvalidIdentityNumber
from minid.domain.identity import parse_identity_number
from minid.domain.keys import Keyer, PersonKey
from minid.domain.letters.model import LetterStatus
from minid.domain.time import today_in_norway
from minid.settings import PinLetterSettings
from minid.values import Value

PIN_LETTERS_FUNCTION = "PinLettersFunction"  # the template's logical id


class Blocking(Value, frozen=True):
    """Whose letters a block would stop, as support is shown them before it is made."""

    __hidden__ = frozenset({"person", "name"})  # left out of repr

    person: PersonKey
    name: str | None  # as the population register has it; None: not in the register
    born: int | None


def whose(identity_number: str, environ: Mapping[str, str]) -> Blocking:
    """The person the number is, as the register has them. InvalidIdentityNumber for a number that is none."""
    settings = PinLetterSettings.from_environ(environ)
    number = parse_identity_number(
        identity_number,
        allow_synthetic=settings.allow_synthetic_identity_numbers,
        today=today_in_norway(SystemClock()),
    )
    person = Keyer(load_pepper(wiring.client("secretsmanager"), settings.pepper_secret_arn)).person_key(number)
    # the name and birth date alone: not the address, which support has no use for here
    item = (
        wiring.client("dynamodb")
        .get_item(
            TableName=environ["POPULATION_REGISTER_TABLE"],
            Key=to_item({"pk": person}),
            ProjectionExpression="given_name, family_name, birth_date",
        )
        .get("Item")
    )
    if item is None:
        return Blocking(person, None, None)
    found = from_item(item)
    name = f"{found.get('given_name', '')} {found.get('family_name', '')}".strip()
    return Blocking(person, name or None, date.fromisoformat(found["birth_date"]).year)


def block_letters(blocking: Blocking, environ: Mapping[str, str]) -> tuple[int, int]:
    """The person's letters blocked (those whose codes work or may come to work), as the route blocks them,
    by support (so the person's history and the notice say): how many blocks this made, and how many of
    the person's letters are blocked in all (before too)."""
    letters, made = wiring.pin_letters(environ).account.blocked_by(blocking.person, support=True)
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


def confirmed(question: str) -> bool:
    """A yes to `question`, typed; no answer (the input ended, or Ctrl-C) is a no."""
    try:
        return input(f"{question} [y/N] ").strip().lower() in {"y", "yes", "j", "ja"}
    except (EOFError, KeyboardInterrupt):
        print()
        return False


def main(
    argv: Sequence[str] | None = None,
    *,
    environment: Callable[[str], Mapping[str, str]] | None = None,
    ask: Callable[[], str] = asked_number,
    confirm: Callable[[str], bool] = confirmed,
) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--stack", required=True, help="the deployed stack's name")
    args, extra = parser.parse_known_args(argv)
    if extra:  # the number typed as an argument, perhaps: not echoed, as argparse's own refusal would
        print("The identity number is asked for, not given as an argument: nothing blocked.", file=sys.stderr)
        return 2
    environ = (environment or (lambda stack: function_environment(boto3.Session(), stack)))(args.stack)
    try:
        blocking = whose(ask().strip(), environ)
    except InvalidIdentityNumber as invalid:  # its reason holds nothing of the number
        reasons = " ".join(error.message for error in invalid.errors)
        print(f"That is no identity number: {reasons} Nothing blocked.", file=sys.stderr)
        return 1
    # a number mistyped (unseen) or taken from another call would block a stranger's letters: support
    # checks the name and year of birth with the caller first
    who = f"{blocking.name}, born {blocking.born}" if blocking.name else "a number not in the population register"
    if not confirm(f"Block the PIN letters of {who}?"):
        print("Nothing blocked.")
        return 1
    made, blocked = block_letters(blocking, environ)
    if not made:
        print(f"No letter whose codes work or may come to work: nothing blocked ({blocked} blocked before).")
        return 0
    print(f"{made} letter(s) blocked now; the person is told on their contacts, if they have any.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
