"""Fill a deployed stack's population register (`PopulationRegisterTable`) from a file of persons.

It reads the stack's pepper, the secret behind every table key and stored hash: whoever runs it needs
`secretsmanager:GetSecretValue` on `PepperSecret`, as the role the stack names `PepperOperatorRoleArn`
(the secret's own policy refuses any other), and holds the pepper in memory while it runs (it is never
written anywhere). Run it from a hardened administration host, with that role, for the operators' tools
alone and for no longer; an import job inside the account, from an export in the stack's bucket, would
keep the pepper in AWS, and is the better way for a production register.

The table is the stack's copy of the population register (Folkeregisteret), one item a person, keyed by
the keyed hash of the identity number under the stack's pepper: only the stack's own pepper makes keys
its functions find, and a deploy leaves the table empty. An operator fills it, in the stack's account
and region, from an export of the register:

    .venv/bin/python -m tools.import_population --stack <stack name> --as-of <the export's date> persons.jsonl

(or `--table <name> --pepper-secret <ARN>`, where describing the stack is not allowed).

One JSON object a line, UTF-8: `{"identity_number": "...", "person": {...}}`, the person as
`minid.domain.population.Person` holds one (names, birth date, kind, status, the address in Norway or
abroad, the date of death, and the address's protection, on every line, null for none: a strictly
confidential address is not kept).
The file is read twice, a line at a time (a register of millions fits in no memory): first every line
is checked (the number's check digits, its kind against the person's and against their status, a death
and its date together, a name, no field the register does not have, at any depth), and a bad line stops
the import before anything is written, named by its number only, never by what it holds. The counts are
then told (by status, by kind, the living no letter can reach, and those whose address is withheld),
and the persons written only once the operator says so (or with `--yes`), 25 a transaction, with progress
told every 100,000 lines, from the file as it was checked: the same open file (one moved over it is not
read), and stopped where it changed (one still being copied, or rewritten, is imported again, whole).
A run cut short is taken up again with `--from-line`, from the line after the
last "written through line" it told, with the same file and `--as-of` (the table holds the digest of the
file its last import wrote: the lines another file skipped would stay as an older one has them). One
import writes at a time: one that starts while another writes takes the table over, and the other stops
at its next batch, told not to be taken up. Each person's item is written whole, so an import run again, or a
newer export over an older one, leaves each person as the file has them; a number given twice is
written as its last line has it. An export older than the one the table holds (`--as-of`, kept in the
table) is refused: it would bring back what the register changed since, the dead alive again and
letters to addresses left; `--replacing-newer` writes it all the same (a bad import undone). (A person
no longer in the register is not removed: that is the register's feed of changes, which this stack
does not have.)
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import stat
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO

import boto3
import msgspec

from minid.adapters.clock import SystemClock
from minid.adapters.population import BATCH_SIZE, DynamoDbPopulationRegister, Held, HoldLost, NotHeld
from minid.adapters.secrets import load_pepper
from minid.domain.errors import InvalidIdentityNumber
from minid.domain.identity import IdentityNumberKind, parse_identity_number
from minid.domain.keys import Keyer, PersonKey
from minid.domain.letters.model import letter_address
from minid.domain.population import AddressProtection, Person, PersonStatus
from minid.domain.time import today_in_norway

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

POPULATION_TABLE = "PopulationRegisterTable"  # the template's logical ids
PEPPER = "PepperSecret"
PROGRESS_EVERY = 100_000


# The register's shape as the import takes it: as minid.domain.population's records, but refusing a
# field they do not have (a misspelt "adress" would else be dropped, and the person left without one).
class _Strict(msgspec.Struct, forbid_unknown_fields=True):
    pass


# A field of the register: bounded, so that no person's item outgrows DynamoDB's 400 KB (the write would
# fail at that line at every run). An address that is not whole is taken as it is, and counted as one no
# letter can go to (`check`).
Field = Annotated[str, msgspec.Meta(max_length=500)]


# The codes an export may give padded or in lower case ("0150 ", "se") are kept as the post and the print
# provider's manifest read them, rather than taken for an address no letter can go to.
class NorwegianAddressIn(_Strict):
    street: Field
    postal_code: Field
    city: Field
    care_of: Field | None = None

    def __post_init__(self) -> None:
        self.postal_code = self.postal_code.strip()


class ForeignAddressIn(_Strict):
    lines_abroad: Annotated[tuple[Field, ...], msgspec.Meta(max_length=10)]
    country: Field
    country_code: Field

    def __post_init__(self) -> None:
        code = self.country_code.strip()
        # only an ASCII code upper-cased: Unicode's rules make "ß" "SS", a code that is no country's
        self.country_code = code.upper() if code.isascii() else code


class PersonIn(_Strict, kw_only=True):
    given_name: Field
    family_name: Field
    birth_date: date
    kind: IdentityNumberKind
    status: PersonStatus
    address: NorwegianAddressIn | None = None
    address_abroad: ForeignAddressIn | None = None
    deceased_on: date | None = None
    # given on every line, null where the address is not protected: an export without it (from a pipeline
    # not yet made to carry it) would have every strictly confidential address kept, and letters go there
    address_protection: AddressProtection | None


class Registered(_Strict):
    identity_number: str
    person: PersonIn


# The register's field names, as a refused line's path may name them (ImportRefused's message)
_FIELDS = "|".join(
    sorted(
        {f for struct in (Registered, PersonIn, NorwegianAddressIn, ForeignAddressIn) for f in struct.__struct_fields__}
    )
)


class ImportRefused(Exception):
    """A line that is not a person of the register: nothing is written."""


class FileChanged(ImportRefused):
    """The file written from is no longer the one checked (still being copied, or rewritten in place)."""

    def __init__(self) -> None:
        super().__init__("the file changed since it was checked: import it again, whole, once it is as it will stay")


def unchanged(lines: BinaryIO, checked: os.stat_result, digest: str | None = None) -> Iterator[bytes]:
    """The file's lines, from its start, each only while the file is as it was when it was `checked` (its
    size and time of change; the same open file: one moved over it meanwhile is not read). A line read past
    a change raises FileChanged before it is handed on, so nothing is written of it; and so does the file's
    end, changed since, or (`digest`: the first pass's) not the end of the lines checked (one cut short)."""
    lines.seek(0)
    read = hashlib.sha256() if digest is not None else None  # (the first pass's is check()'s own)
    for line in lines:
        if changed(lines, checked):
            raise FileChanged
        if read is not None:
            read.update(line)
        yield line
    if changed(lines, checked) or (read is not None and read.hexdigest() != digest):
        raise FileChanged


def changed(lines: BinaryIO, checked: os.stat_result) -> bool:
    """Whether the open file is no longer as it was when it was `checked`: its size, or its time of change
    (not st_ctime: a file moved over this one unlinks it, which changes that, and this one is still the one
    checked; a change whose time was set back by hand is found by the digest, at the file's end)."""
    now = os.fstat(lines.fileno())
    return (now.st_size, now.st_mtime_ns) != (checked.st_size, checked.st_mtime_ns)


# What a D-number holder never is: who comes to live in Norway is given a fødselsnummer, and so only one
# who lived there moves from it. (A fødselsnummer holder may never have lived in Norway: a citizen abroad
# given one for a passport, a child born in Norway to parents who live elsewhere.)
_NEVER_OF_A_D_NUMBER = frozenset({PersonStatus.RESIDENT, PersonStatus.EMIGRATED})


class Read(msgspec.Struct, frozen=True):
    at: int  # the line's number
    key: PersonKey
    person: Person


def read_persons(lines: Iterable[bytes | str], keyer: Keyer, *, allow_synthetic: bool, today: date) -> Iterator[Read]:
    """Each line's person under its key, a line at a time (blank lines passed over); ImportRefused names a
    bad line by its number and what is wrong, never by what it holds (a name, a number)."""
    for at, raw in enumerate(lines, 1):
        try:
            line = raw.decode("utf-8-sig" if at == 1 else "utf-8") if isinstance(raw, bytes) else raw
        except UnicodeDecodeError:
            raise ImportRefused(f"line {at}: not UTF-8") from None
        if not line.strip():
            continue
        try:
            entry = msgspec.json.decode(line, type=Registered)
        except msgspec.DecodeError as error:
            # where in the line (`$.person.given_name`, say: the register's field names), never what it holds
            # (a path of the register's field names alone: a key of the line's own, unknown, that ends as one
            # would read is not taken for one)
            path = re.search(rf" - at (`\$(?:\.(?:{_FIELDS}))*(?:\.lines_abroad\[\d{{1,2}}\])?`)$", str(error))
            where = path[1] if path else "the JSON"
            raise ImportRefused(f"line {at}: not a person ({where} is not as the register's)") from None
        try:
            number = parse_identity_number(entry.identity_number, allow_synthetic=allow_synthetic, today=today)
        except InvalidIdentityNumber as error:
            why = "; ".join(e.message for e in error.errors)  # the reason, never the digits
            raise ImportRefused(f"line {at}: not an identity number ({why})") from None
        person = msgspec.convert(msgspec.to_builtins(entry.person), type=Person)
        if number.kind is not person.kind:
            raise ImportRefused(f"line {at}: the number is a {number.kind.value}, the person a {person.kind.value}")
        if (person.status is PersonStatus.DECEASED) != (person.deceased_on is not None):
            raise ImportRefused(f"line {at}: a death needs its date, and a date of death the status deceased")
        if person.kind is IdentityNumberKind.D_NUMBER and person.status in _NEVER_OF_A_D_NUMBER:
            raise ImportRefused(f"line {at}: a {person.kind.value} holder is never {person.status.value}")
        if not (person.given_name.strip() or person.family_name.strip()):  # (one name alone: either)
            raise ImportRefused(f"line {at}: a person with no name (a column shifted?)")
        yield Read(at, keyer.person_key(number), person)


class Imported(msgspec.Struct):
    file: str = ""  # the digest of the lines read: the file checked, as the export's hold records it
    persons: int = 0
    no_address: int = 0  # alive, their number in use, and no address a letter could go to: orders refused
    withheld: int = 0  # alive, their number in use, their address strictly confidential: not kept, no letter
    by_status: Counter[str] = msgspec.field(default_factory=Counter)
    by_kind: Counter[str] = msgspec.field(default_factory=Counter)

    def told(self) -> str:
        """The counts, for the operator to see that the file is the register as they expect it (a column
        shifted would show as everyone deceased, say) before anything is written."""
        statuses = ", ".join(f"{self.by_status[s.value]} {s.value}" for s in PersonStatus)
        kinds = ", ".join(f"{self.by_kind[k.value]} {k.value}" for k in IdentityNumberKind)
        return (
            f"{self.persons} persons checked: {statuses}; {kinds}; "
            f"{self.no_address} alive, their number in use, with no address a letter could go to; "
            f"{self.withheld} more with a strictly confidential address, not kept"
        )


def check(lines: Iterable[bytes | str], keyer: Keyer, *, allow_synthetic: bool, today: date) -> Imported:
    """The first pass: every line read and checked, nothing kept but the counts and the lines' digest."""
    counted, digest = Imported(), hashlib.sha256()

    def hashed() -> Iterator[bytes | str]:
        for line in lines:
            digest.update(line.encode() if isinstance(line, str) else line)
            yield line

    for read in read_persons(hashed(), keyer, allow_synthetic=allow_synthetic, today=today):
        counted.persons += 1
        withheld = read.person.address_withheld
        counted.withheld += read.person.in_use and withheld
        counted.no_address += read.person.in_use and not withheld and letter_address(read.person) is None
        counted.by_status[read.person.status.value] += 1
        counted.by_kind[read.person.kind.value] += 1
    counted.file = digest.hexdigest()
    return counted


class TakenOver(Exception):
    """Another import took the table over (hold_export) while this one was writing."""

    def __init__(self, held: Held | None) -> None:
        super().__init__(f"another import, of the register of {held.as_of if held else 'no day'}, took the table over")


def write(
    client: DynamoDBClient,
    table: str,
    persons: Iterable[Read],
    *,
    run: str,
    told: Callable[[str], object] = print,
    every: int = PROGRESS_EVERY,
    from_line: int = 1,
) -> int:
    """The second pass: BATCH_SIZE persons a request (DynamoDbPopulationRegister.put_held: a number twice
    in one request is written as its last line has it), each only while the import `run` still holds the
    table (hold_export), in one transaction with that check: two imports at once would each write persons
    over the other's, an older export's over a newer's. Told, every `every` lines and when it stops (a
    write failing, a line changed since the check, Ctrl-C): the line every line up to which is written, so
    that a run cut short is taken up from the line after it (`from_line`: where this run took up, every
    line before it written by a run before). One taken over stops, told not to be taken up (TakenOver)."""
    register = DynamoDbPopulationRegister(client, table)
    written, through, last_told, pending_through = 0, from_line - 1, from_line - 1, from_line - 1
    batch: list[tuple[PersonKey, Person]] = []

    def flush() -> None:
        nonlocal written, through
        try:
            written += register.put_held(batch, run)
        except HoldLost:
            held = register.held_export()
            if held is None or held.run != run:
                raise TakenOver(held) from None
            raise  # still this run's (a cancel that named no reason): taken up as any other failure
        through = pending_through
        batch.clear()

    try:
        for read in persons:
            batch.append((read.key, read.person))
            pending_through = read.at
            if len(batch) == BATCH_SIZE:
                flush()
                if through - last_told >= every:
                    told(f"written through line {through} ({written} persons); go on with --from-line {through + 1}")
                    last_told = through
        if batch:
            flush()
    except TakenOver as taken:
        told(f"stopped: written through line {through}; {taken}: this one is not to be taken up")
        raise
    except ImportRefused:  # a line the first pass did not read so: the file changed (--from-line: refused)
        told(f"stopped: written through line {through}; the file is not the one checked: import it again, whole")
        raise
    except BaseException:  # a write failing, Ctrl-C
        told(f"stopped: written through line {through}; go on with --from-line {through + 1}")
        raise
    return written


def stack_resources(cloudformation: Any, stack: str) -> tuple[str, str]:  # (no type stubs for it here)
    """The stack's population table and pepper secret, by their logical ids."""

    def physical(logical_id: str) -> str:
        found = cloudformation.describe_stack_resource(StackName=stack, LogicalResourceId=logical_id)
        return str(found["StackResourceDetail"]["PhysicalResourceId"])

    return physical(POPULATION_TABLE), physical(PEPPER)


def main(argv: Sequence[str] | None = None, session: boto3.Session | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("file", help="the persons, one JSON object a line")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--stack", help="the deployed stack's name (its table and pepper looked up)")
    where.add_argument("--table", help="the population table's name, with --pepper-secret (no lookup)")
    parser.add_argument("--pepper-secret", help="the pepper secret's ARN, with --table")
    parser.add_argument("--allow-synthetic", action="store_true", help="accept synthetic test numbers (a test stage's)")
    parser.add_argument("--from-line", type=int, default=1, help="write from this line on (a run cut short)")
    parser.add_argument(
        "--as-of", type=date.fromisoformat, required=True, help="the day the export was taken (YYYY-MM-DD)"
    )
    parser.add_argument(
        "--replacing-newer", action="store_true", help="write it over a newer export (a bad import undone)"
    )
    parser.add_argument("--yes", action="store_true", help="write without asking, once the file is checked")
    args = parser.parse_args(argv)
    if (args.table is None) != (args.pepper_secret is None):
        parser.error("--table and --pepper-secret go together")
    session = session or boto3.Session()
    if args.stack is not None:
        table, secret = stack_resources(session.client("cloudformation"), args.stack)
    else:
        table, secret = args.table, args.pepper_secret
    keyer = Keyer(load_pepper(session.client("secretsmanager"), secret))
    try:
        written = _imported(args, session.client("dynamodb"), table, keyer)
    except NothingWritten as refused:
        print(f"Nothing written: {refused}", file=sys.stderr)
        return 1
    except FileChanged as changed:
        print(f"Stopped: {changed}", file=sys.stderr)
        return 1
    except ImportRefused as refused:
        print(f"Stopped, the file changed since it was checked: {refused}", file=sys.stderr)
        return 1
    except TakenOver as taken:
        print(f"Stopped: {taken}", file=sys.stderr)
        return 1
    print(f"{written} persons written to {table}")
    return 0


class NothingWritten(Exception):
    """Why the import wrote nothing."""


def _imported(args: argparse.Namespace, dynamodb: DynamoDBClient, table: str, keyer: Keyer) -> int:
    """The file checked, its counts told and confirmed, the export's day held, and the persons written."""
    today = today_in_norway(SystemClock())
    if args.as_of > today:  # a typo, that would hold off every import after it as older
        raise NothingWritten(f"the export's date, {args.as_of}, is after today")
    register = DynamoDbPopulationRegister(dynamodb, table)
    # told before the file is checked (minutes, for millions), and held below
    held, taking_up = register.held_export(), args.from_line > 1
    if taking_up:
        _taken_up(held, args.as_of)
    elif held is not None and held.as_of > args.as_of and not args.replacing_newer:
        raise _older(held.as_of, args.as_of)
    # one open file, read twice: one moved over it (a newer export) is not read, and one still being
    # written, or rewritten, is refused where it changed (unchanged), not written as it was never checked.
    with _export(args.file) as lines:
        checked = os.fstat(lines.fileno())  # as it is opened: one still being copied changes while it is checked
        try:
            counted = check(unchanged(lines, checked), keyer, allow_synthetic=args.allow_synthetic, today=today)
        except ImportRefused as refused:
            raise NothingWritten(str(refused)) from None
        print(counted.told())
        if taking_up:
            _taken_up(register.held_export(), args.as_of, counted.file)
        if not args.yes and not confirmed(f"Write them to {table}, as the register of {args.as_of}? Type yes: "):
            raise NothingWritten("not confirmed")
        if changed(lines, checked):  # while the operator was asked
            raise NothingWritten(str(FileChanged()))
        run = uuid.uuid4().hex
        try:
            register.hold_export(
                args.as_of, run=run, file=counted.file, older=args.replacing_newer, taking_up=taking_up
            )
        except NotHeld as other:  # another import's hold, written meanwhile
            if taking_up:
                _taken_up(other.held, args.as_of, counted.file)  # (raises)
            raise _older(other.held.as_of if other.held else args.as_of, args.as_of) from None
        written = unchanged(lines, checked, counted.file)
        persons = read_persons(written, keyer, allow_synthetic=args.allow_synthetic, today=today)
        told = partial(print, flush=True)  # seen at once, in a log or a pipe too, should the run be cut short
        taken_up = (p for p in persons if p.at >= args.from_line)
        return write(dynamodb, table, taken_up, run=run, told=told, from_line=args.from_line)


def _export(path: str) -> BinaryIO:
    """The export, opened to be read twice: a file, not a pipe (`<(zcat export.gz)`), which cannot be. Judged
    on what was opened (never waiting on a pipe's writer to open it); NothingWritten, with its reason, for a
    path that cannot be opened (missing, not readable) or is no file."""
    try:
        opened = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # (a pipe opens at once, unread)
    except OSError as error:
        raise NothingWritten(f"{path}: {error.strerror}") from None
    if not stat.S_ISREG(os.fstat(opened).st_mode):
        os.close(opened)
        raise NothingWritten(f"{path} is not a file (it is read twice: a pipe or a stream cannot be)")
    os.set_blocking(opened, True)
    return os.fdopen(opened, "rb")


def _taken_up(held: Held | None, as_of: date, file: str | None = None) -> None:
    """NothingWritten unless the import the table holds is of this day's export (and of this file, its
    digest `file`, once the file is read): the run cut short that `--from-line` takes up. The lines
    skipped of another file (a newer export, say) would be left as an older one has them, unseen."""
    if held is None or held.file is None:
        why = "no import is held" if held is None else "the import held was written before files were told apart"
    elif held.as_of != as_of:
        why = f"the import held is of the register of {held.as_of}"
    elif file is not None and held.file != file:
        why = "the import held is of another file"
    else:
        return
    raise NothingWritten(
        f"--from-line takes up a run of this same file and day that was cut short, and {why}: run it whole"
    )


def _older(held: date, as_of: date) -> NothingWritten:
    return NothingWritten(
        f"the table holds the register of {held}, newer than this export's {as_of}; "
        "to write it over that all the same (a bad import undone), add --replacing-newer"
    )


def confirmed(question: str) -> bool:
    """Whether the operator answers yes (no answer, or Ctrl-C: no)."""
    try:
        return input(question).strip().casefold() == "yes"
    except (EOFError, KeyboardInterrupt):
        print()
        return False


if __name__ == "__main__":
    sys.exit(main())
