"""What the PIN-letter services need from the world."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime
from enum import StrEnum
from typing import Protocol

from minid.domain.contacts import Language
from minid.domain.events import SecurityEvent
from minid.domain.keys import PersonKey
from minid.domain.letters.model import LetterStanding, PinLetter, PrintDocument, PrintStanding, RecipientOutcome
from minid.domain.population import Person
from minid.values import Value


class RecipientStanding(Value, frozen=True):
    """What the recipient's check reads in one call: the person in the population register, the language
    of their contact record (None without one), and their ledger's recent orders and version, and the
    last day a refusal was put in their history for each reason (`RefusalRecorded`)."""

    person: Person | None
    language: Language | None
    orders: Mapping[str, datetime]
    ledger_version: int
    refusals_recorded: Mapping[RecipientOutcome, date] = {}
    # when each of `orders` was placed (an order reserved before they were kept: none)
    placed: Mapping[str, datetime] = {}

    def placed_orders(self) -> dict[str, datetime]:
        """When each of the recent orders was placed; when it was accepted, for one reserved before."""
        return {letter_id: self.placed.get(letter_id, at) for letter_id, at in self.orders.items()}


class RefusalRecorded(Value, frozen=True):
    """A refusal put in the person's history for its reason and day, noted in their ledger with it:
    written only if no refusal of that reason was noted for that day meanwhile."""

    outcome: RecipientOutcome
    day: date


class QuotaReservation(Value, frozen=True):
    """The ledger's orders with the letter's among them (when each was accepted, and placed), to be
    written over the version read."""

    orders: Mapping[str, datetime]
    version: int
    placed: Mapping[str, datetime] = {}


class LedgerPointers(Value, frozen=True):
    """The ledger's pointers: the person's active letter, and the one activated last (`latest`: kept when it
    is blocked, which ends `active`; None on a ledger written before it was kept)."""

    active: str | None = None
    latest: str | None = None


class Recipients(Protocol):
    def read(self, person: PersonKey) -> RecipientStanding: ...

    def settle(
        self,
        letter: PinLetter,
        outcome: RecipientOutcome,
        language: Language,
        reservation: QuotaReservation | None,
        events: Sequence[SecurityEvent],
        *,
        refusal: RefusalRecorded | None = None,
        quota_as_read: int | None = None,
    ) -> bool:
        """At once: the outcome on the letter as read (a refused one's status too, unless it was blocked),
        the quota reserved in the ledger as read, the refusal noted in it, the events. `quota_as_read`: a
        refusal by the quota, judged on the ledger of that version. False, writing nothing, when either
        changed."""
        ...


class PinLetters(Protocol):
    """The letters and orders, and each person's quota and active letter."""

    def create_order(self, letter: PinLetter, expires_at: datetime) -> datetime | None:
        """The order recorded, unless one is already under its id: None, or that order's time."""
        ...

    def discard_order(self, letter_id: str) -> None: ...

    def get(self, letter_id: str) -> PinLetter | None: ...

    def print_standing(self, letter_id: str) -> PrintStanding | None:
        """What a report of the print provider is judged by, alone (no codes, no person): what the print
        callback, reached by another company's role, reads and is let read."""
        ...

    def standing(self, person: PersonKey) -> LetterStanding:
        """The person's letter posted last (whatever its status now), whether it is still active, and
        the code numbers the person has used over all their letters."""
        ...

    def record_pin_failure(self, letter_id: str, counted: bool = True) -> int:
        """Count a wrong PIN code against the letter, atomically; the count so far. Not `counted`: the same
        write, counting nothing (a try whose PIN code was right, as long to answer as one whose was not)."""
        ...

    def record_pin_failure_with(self, letter_id: str, person: PersonKey, failure: SecurityEvent, below: int) -> bool:
        """Count a wrong PIN code against a posted letter and write the failure's event, in one write, if
        the count stays below `below` (it does not block the letter); else (False) write nothing."""
        ...

    def letters_of(self, person: PersonKey) -> list[PinLetter]:
        """Every letter and order of the person, newest first."""
        ...

    def release_quota(self, person: PersonKey, letter_id: str) -> None: ...

    def attach_codes(self, letter_id: str, code_hashes: Mapping[int, str], document: PrintDocument) -> bool:
        """Give an accepted order its codes and document, once; False when it may no longer have them."""
        ...

    def pointers(self, person: PersonKey) -> LedgerPointers:
        """The person's ledger's pointers to their letters (read consistently), whatever the letters' status."""
        ...

    def record_dispatch(
        self,
        letter: PinLetter,
        at: datetime,
        *,
        activate: bool,
        supersede: Sequence[str] = (),
        pointers_were: LedgerPointers | None = None,
        used: Collection[int] = (),
        events: Sequence[SecurityEvent] = (),
    ) -> bool:
        """The letter posted: activated (the older ones superseded, the pointers moved from `pointers_were`),
        or not (blocked, or superseded by a newer one). False, nothing written, if the letter, an older
        one or the pointers are not as read. `used`: the codes the person used on their other letters,
        kept with the person's (LetterStanding.used). `events`: written with an activation, at once."""
        ...

    def record_report(self, letter_id: str, status: str) -> None:
        """The print provider's report that resumed the letter's workflow, for a repeat of it to be told
        by until the workflow settles the letter (the first one recorded stands)."""
        ...

    def mark_failed(self, letter: PinLetter, at: datetime, error: str, events: Sequence[SecurityEvent] = ()) -> bool:
        """The letter (as read) failed, if it is still ordered or printing and its check's outcome is still the
        one read, with the person's `events` in the same write; False, writing nothing, if not (blocked,
        posted, failed, or checked meanwhile)."""
        ...

    def block(
        self,
        person: PersonKey,
        letter_id: str,
        at: datetime,
        events: Sequence[SecurityEvent],
        used: Collection[int] = (),
    ) -> bool:
        """Block the letter, with the events that tell it, if its codes work or may come to work; False
        (nothing written) if it has left those states (blocked meanwhile, superseded, failed). `used`:
        its codes used, kept with the person's (LetterStanding.used)."""
        ...


class ReportedStatus(StrEnum):
    DISPATCHED = "dispatched"
    FAILED = "failed"


class PrintReport(Value, frozen=True):
    __hidden__ = frozenset({"reason"})  # the provider's own words: they may name the person or the address

    status: ReportedStatus
    reason: str | None = None


class LetterWorkflow(Protocol):
    """The print workflow of each letter (one execution per letter)."""

    def start(self, letter_id: str) -> None:
        """Start the letter's workflow; starting it again for the same letter changes nothing."""
        ...

    def started(self, letter_id: str) -> bool:
        """Whether the letter's workflow was started (a start whose answer was lost may have been)."""
        ...

    def resume(self, letter_id: str, report: PrintReport) -> bool:
        """Hand the print provider's report to the waiting workflow; False if it no longer waits."""
        ...

    def resumed_with(self, letter_id: str) -> ReportedStatus | None:
        """The report that resumed the letter's print hand-over last, if one did (not timed out)."""
        ...

    def timed_out(self, letter_id: str) -> bool:
        """Whether the letter's print hand-over last ended with no report in time: the letter is then
        marked failed by its workflow, and handed over no more."""
        ...


class PrintedLetter(Value, frozen=True):
    """What goes on paper."""

    __hidden__ = frozenset({"name", "address", "codes"})  # left out of repr

    letter_id: str
    name: str
    address: tuple[str, ...]
    country_code: str  # where it is posted to: NO, or the country abroad
    codes: Mapping[int, str]
    language: Language
    dated: date


class PinCodeHasher(Protocol):
    """A letter's codes hashed for the table (minid.domain.keys.Keyer, with the pepper)."""

    def pin_code_hash(self, letter_id: str, index: int, code: str) -> str: ...


class PrintDocuments(Protocol):
    def printable(self, name: str, address: Sequence[str]) -> bool:
        """Whether a letter to this name and address can be printed (every character in the letter's font,
        and the lines within the envelope's window): `store` refuses one that cannot."""
        ...

    def store(self, letter: PrintedLetter) -> PrintDocument:
        """Render and store the print-ready document; a new location each time it is called."""
        ...

    def discard(self, document: PrintDocument) -> None: ...
