"""Fill a deployed stack's population register (`PopulationRegisterTable`) from a file of persons.

The table is the stack's copy of the population register (Folkeregisteret), one item a person, keyed by
the keyed hash of the identity number under the stack's pepper: only the stack's own pepper makes keys
its functions find, and a deploy leaves the table empty. An operator fills it, in the stack's account
and region, from an export of the register:

    .venv/bin/python -m tools.import_population --stack <stack name> persons.jsonl

(or `--table <name> --pepper-secret <ARN>`, where describing the stack is not allowed).

One JSON object a line: `{"identity_number": "...", "person": {...}}`, the person as
`minid.domain.population.Person` holds one (names, birth date, kind, status, the address in Norway or
abroad, the date of death). Every line is read and checked (the number's check digits, its kind against
the person's, unknown fields refused) before anything is written, and a line is named by its number
only, never by what it holds. Each person's item is written whole: an import run again, or a newer
export imported over an older one, leaves each person as the file has them. (A person no longer in the
register is not removed: that is the register's feed of changes, which this stack does not have.)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

import boto3
import msgspec

from minid.adapters.clock import SystemClock
from minid.adapters.population import DynamoDbPopulationRegister
from minid.adapters.secrets import load_pepper
from minid.domain.errors import InvalidIdentityNumber
from minid.domain.identity import parse_identity_number
from minid.domain.keys import Keyer, PersonKey
from minid.domain.population import Person
from minid.domain.time import today_in_norway

POPULATION_TABLE = "PopulationRegisterTable"  # the template's logical ids
PEPPER = "PepperSecret"


class Registered(msgspec.Struct, forbid_unknown_fields=True):
    identity_number: str
    person: Person


class ImportRefused(Exception):
    """A line that is not a person of the register: nothing is written."""


def read_persons(
    lines: Iterable[str], keyer: Keyer, *, allow_synthetic: bool, today: date
) -> list[tuple[PersonKey, Person]]:
    """Each line's person under its key, every line checked first; ImportRefused names the first bad line
    by its number and what is wrong, never by what it holds (a name, a number)."""
    persons: list[tuple[PersonKey, Person]] = []
    for at, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = msgspec.json.decode(line, type=Registered)
        except msgspec.DecodeError:
            raise ImportRefused(f"line {at}: not a person (the JSON, or a field, is not as the register's)") from None
        try:
            number = parse_identity_number(entry.identity_number, allow_synthetic=allow_synthetic, today=today)
        except InvalidIdentityNumber as error:
            why = "; ".join(e.message for e in error.errors)  # the reason, never the digits
            raise ImportRefused(f"line {at}: not an identity number ({why})") from None
        if number.kind is not entry.person.kind:
            raise ImportRefused(
                f"line {at}: the number is a {number.kind.value}, the person a {entry.person.kind.value}"
            )
        persons.append((keyer.person_key(number), entry.person))
    return persons


def stack_resources(cloudformation: Any, stack: str) -> tuple[str, str]:  # (no type stubs for it here)
    """The stack's population table and pepper secret, by their logical ids."""

    def physical(logical_id: str) -> str:
        found = cloudformation.describe_stack_resource(StackName=stack, LogicalResourceId=logical_id)
        return str(found["StackResourceDetail"]["PhysicalResourceId"])

    return physical(POPULATION_TABLE), physical(PEPPER)


def main(argv: Sequence[str] | None = None, session: boto3.Session | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", help="the persons, one JSON object a line")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--stack", help="the deployed stack's name (its table and pepper looked up)")
    where.add_argument("--table", help="the population table's name, with --pepper-secret (no lookup)")
    parser.add_argument("--pepper-secret", help="the pepper secret's ARN, with --table")
    parser.add_argument("--allow-synthetic", action="store_true", help="accept synthetic test numbers (a test stage's)")
    args = parser.parse_args(argv)
    if (args.table is None) != (args.pepper_secret is None):
        parser.error("--table and --pepper-secret go together")
    session = session or boto3.Session()
    if args.stack is not None:
        table, secret = stack_resources(session.client("cloudformation"), args.stack)
    else:
        table, secret = args.table, args.pepper_secret
    keyer = Keyer(load_pepper(session.client("secretsmanager"), secret))
    with open(args.file, encoding="utf-8") as lines:
        try:
            persons = read_persons(
                lines, keyer, allow_synthetic=args.allow_synthetic, today=today_in_norway(SystemClock())
            )
        except ImportRefused as refused:
            print(f"Nothing written: {refused}", file=sys.stderr)
            return 1
    written = DynamoDbPopulationRegister(session.client("dynamodb"), table).put_many(persons)
    print(f"{written} persons written to {table}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
