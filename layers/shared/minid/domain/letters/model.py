"""PIN code letters: what a letter is, who may be sent one, where it goes, and how often."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from datetime import date, datetime, timedelta
from enum import StrEnum

from msgspec import field

from minid.domain.contacts import Language
from minid.domain.identity import IdentityNumberKind
from minid.domain.keys import Keyer, KeyPurpose, PersonKey
from minid.domain.population import Person
from minid.domain.random import RandomSource
from minid.values import Value

MINIMUM_AGE = 13  # MinID may be ordered from the calendar year a person turns 13
CODES_PER_LETTER = 20
CODE_DIGITS = 6


def asking_order(keyer: Keyer, person: PersonKey) -> tuple[int, ...]:
    """The order in which a start without a login (enrolment, password reset) asks for a person's codes:
    the first unused ones in it, and a decoy (no letter, not enrolled, no such person) the first ones.

    Fixed per person by a keyed hash, whoever the person is: every start of the same number asks for the
    same numbers until the person uses a code. Numbers drawn at random from the unused codes told, over
    some 100 starts, who had used codes (who is enrolled): the codes used never came up."""
    rank = {i: keyer.digest(KeyPurpose.CODE_ORDER, f"{person}:{i}") for i in range(1, CODES_PER_LETTER + 1)}
    return tuple(sorted(rank, key=rank.__getitem__))


class LetterStatus(StrEnum):
    ORDERED = "ordered"  # the order is recorded; the recipient is being checked
    PRINTING = "printing"  # the codes exist and the print provider has the document
    DISPATCHED = "dispatched"  # posted: the codes work (the person's active letter)
    FAILED = "failed"  # not posted: its codes never work
    SUPERSEDED = "superseded"  # a newer letter was posted
    BLOCKED = "blocked"  # the person blocked it
    REFUSED = "refused"  # the order was refused (not eligible, or the quota); never shown


class RecipientOutcome(StrEnum):
    """What checking the recipient decided. Told to nobody over HTTP: the API answers alike."""

    ACCEPTED = "accepted"
    QUOTA = "quota"
    # alive and old enough, with no address the post can deliver to: told, as a refusal by the quota is (on
    # the person's contacts, where they have a MinID: else they order, and hear nothing, again and again)
    NO_ADDRESS = "no-address"
    # the number ordered with replaced by another (a D-number by a fødselsnummer): told likewise, on the
    # contacts of the person's user made with the old number, who else orders with it and hears nothing
    NUMBER_REPLACED = "number-replaced"
    # a name or an address the letter cannot print (a script its font lacks, lines too many or too long for
    # the envelope's window): told likewise, to have the register's entry checked or to call support,
    # and counted for the operators (LettersUnprintableAlarm), rather than every order failing the letter
    # and alarming them one by one (anyone may order in a person's name)
    UNPRINTABLE = "unprintable"
    # the register has the person's address as strictly confidential: no letter goes by post to an address
    # the stack must not know (population.AddressProtection). Told likewise, to call support, rather than
    # to check the address with Skatteetaten as if it were missing, and order again, in vain
    PROTECTED_ADDRESS = "protected-address"
    INELIGIBLE = "ineligible"  # dead, too young, or not in the register: no one to tell
    # refused by the quota within moments of an order taken: the same order sent twice (a double click, a
    # form sent again after its answer was lost, without an idempotency key): told to no one, as the
    # letter of the first is on its way (a refusal's notice and event would say the order was refused)
    REPEATED = "repeated"


class Ineligibility(StrEnum):
    DECEASED = "deceased"
    CEASED = "ceased"  # the number replaced by another: the person orders with that one
    NO_ADDRESS = "no-address"
    PROTECTED_ADDRESS = "protected-address"
    TOO_YOUNG = "too-young"


class Activation(StrEnum):
    ACTIVE = "active"  # the letter's codes now work, and older letters are superseded
    SUPERSEDED = "superseded"  # a newer letter was posted first; this one never becomes active
    BLOCKED = "blocked"  # the person blocked it while it was at the printer


class PrintDocument(Value, frozen=True):
    """Where the print provider finds the letter: a PDF and its manifest, KMS-encrypted in S3."""

    bucket: str
    pdf: str
    manifest: str


# Wrong PIN codes a letter takes, over every login and reset, before it is blocked (guard.py; an enrolment's
# are bounded by the person's guesses a day instead: domain/enrolment.py).
MAX_PIN_FAILURES_PER_LETTER = 5
# How long a repeated order with the same idempotency key gets the first one's answer (and may start its
# workflow, if the first's start failed): OnceOnly's record.
ONCE_ONLY_FOR = timedelta(hours=24)
# An order still without an outcome this long after it was placed was never taken up by a workflow: a retry
# with its key at the last moment of ONCE_ONLY_FOR starts one, which settles the recipient in minutes (or
# fails the letter within hours): a day more.
ABANDONED_AFTER = ONCE_ONLY_FOR + timedelta(days=1)


class PrintStanding(Value, frozen=True):
    """A letter as the print provider's report is judged by it."""

    status: LetterStatus
    printed: bool  # it has (or had, until posted or failed) a print document: it went to the printer
    dispatched_at: datetime | None
    reported: str | None  # the report that resumed its workflow, until the letter is settled


class PinLetter(Value, frozen=True):
    __hidden__ = frozenset({"code_hashes"})  # left out of repr

    letter_id: str
    person: PersonKey
    status: LetterStatus
    ordered_at: datetime
    outcome: RecipientOutcome | None = None
    language: Language | None = None
    code_hashes: Mapping[int, str] = field(default_factory=dict)
    used: Mapping[int, datetime] = field(default_factory=dict)
    document: PrintDocument | None = None
    dispatched_at: datetime | None = None
    # the print provider's report that resumed the letter's workflow ("dispatched", "failed"), until it is settled
    reported: str | None = None
    pin_failures: int = 0  # wrong PIN codes given for it

    @property
    def guessed_out(self) -> bool:
        """As many wrong codes as a letter takes: its codes no longer work, blocked or not (yet)."""
        return self.pin_failures >= MAX_PIN_FAILURES_PER_LETTER

    @property
    def codes_work(self) -> bool:
        """Its unused codes may be used: it is posted, and not guessed out (its block may not be written yet).
        The transaction that uses a code holds it to the same (minid.adapters.letters.pin_codes_used)."""
        return self.status is LetterStatus.DISPATCHED and not self.guessed_out

    @property
    def codes_remaining(self) -> int:
        """The unused codes that work, or will once the letter is posted: none of a letter blocked,
        superseded, failed or guessed out (a person who blocked a stolen letter is not told 18 remain)."""
        if self.guessed_out or self.status not in (LetterStatus.PRINTING, LetterStatus.DISPATCHED):
            return 0
        return len(self.code_hashes) - len(self.used)

    @property
    def visible(self) -> bool:
        """Refused orders are no letters: the person's list never shows them."""
        return self.status is not LetterStatus.REFUSED

    def abandoned(self, now: datetime) -> bool:
        """An order whose workflow never took it up (its start failed), well past the time a retry with its
        idempotency key could start it: no letter will come of it, and the list no longer shows it."""
        return self.status is LetterStatus.ORDERED and self.outcome is None and now - self.ordered_at >= ABANDONED_AFTER


class QuotaPolicy(Value, frozen=True):
    """Not within 24 hours of the last letter, and not more than 3 in 30 days."""

    min_interval: timedelta = timedelta(hours=24)
    window: timedelta = timedelta(days=30)
    max_in_window: int = 3
    repeated_within: timedelta = timedelta(minutes=1)  # an order refused this near one taken: `REPEATED`

    def recent(self, orders: Mapping[str, datetime], now: datetime) -> dict[str, datetime]:
        return {letter_id: at for letter_id, at in orders.items() if now - at < self.window}

    def allows(self, previous: Iterable[datetime], now: datetime) -> bool:
        recent = [at for at in previous if now - at < self.window]
        return len(recent) < self.max_in_window and all(now - at >= self.min_interval for at in recent)

    def repeats(self, previous: Iterable[datetime], ordered_at: datetime) -> bool:
        """Whether an order (at `ordered_at`) came within moments of one taken, before or after it (two
        sent at once may be checked in either order)."""
        return any(abs(ordered_at - at) <= self.repeated_within for at in previous)


def generate_pin_codes(random: RandomSource) -> dict[int, str]:
    """20 distinct 6-digit codes, numbered 1 to 20, from a cryptographic random source."""
    codes: dict[int, str] = {}
    seen: set[str] = set()
    while len(codes) < CODES_PER_LETTER:
        code = f"{random.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        if code not in seen:
            seen.add(code)
            codes[len(codes) + 1] = code
    return codes


def letter_address(person: Person) -> tuple[str, ...] | None:
    """Where the letter goes: the address in Norway; for a D-number holder without one, the address abroad.
    None for an address the post could not deliver to (a street, a postcode of four digits and a town;
    abroad, a line, a country and its code): a letter to it would be lost, or go domestic. None for a
    strictly confidential address, whatever is stored: it goes on no letter."""
    if person.address_withheld:
        return None
    home, abroad = person.address, person.address_abroad
    if home is not None:
        whole = bool(home.street.strip() and home.city.strip() and re.fullmatch(r"[0-9]{4}", home.postal_code))
        return home.lines() if whole else None
    if person.kind is IdentityNumberKind.D_NUMBER and abroad is not None:
        lines = any(line.strip() for line in abroad.lines_abroad)
        whole = lines and bool(abroad.country.strip() and re.fullmatch(r"[A-Z]{2}", abroad.country_code))
        return abroad.lines() if whole else None
    return None


def letter_language(person: Person | None, chosen: Language | None) -> Language:
    """The language the person chose (their contact record's); without a choice (a first letter: the
    record is made at enrolment, which needs it), English for a letter that goes abroad, else bokmål."""
    if chosen is not None:
        return chosen
    return Language.ENGLISH if person is not None and person.abroad else Language.BOKMAL


def recipient_ineligibility(person: Person, today: date) -> Ineligibility | None:
    """None when the person may be sent a letter, as far as the register tells (the quota aside)."""
    if not person.alive:
        return Ineligibility.DECEASED
    if not person.in_use:
        return Ineligibility.CEASED
    if today.year - person.birth_date.year < MINIMUM_AGE:
        return Ineligibility.TOO_YOUNG
    if person.address_withheld:
        return Ineligibility.PROTECTED_ADDRESS
    if letter_address(person) is None:
        return Ineligibility.NO_ADDRESS
    return None


class LetterStanding(Value, frozen=True):
    """What a start without a login reads of a person's letters, at once (their ledger, and the letter
    posted last)."""

    letter: PinLetter | None  # the letter posted last, whatever its status now
    active: bool  # it is still the person's active letter (no block since)
    used: frozenset[int]  # the code numbers the person has used, over all their letters

    def letter_for(self, asked: Collection[int]) -> PinLetter | None:
        """The letter whose codes by these numbers work now (posted, still active, not used), if any."""
        letter = self.letter
        if letter is None or not self.active or letter.status is not LetterStatus.DISPATCHED:
            return None
        return letter if all(i in letter.code_hashes and i not in letter.used for i in asked) else None


NO_LETTERS = LetterStanding(None, active=False, used=frozenset())


def codes_to_ask(keyer: Keyer, person: PersonKey, standing: LetterStanding, count: int) -> tuple[int, ...]:
    """The code numbers a start without a login asks for: the first `count` in the person's order that
    the person has not used, on any letter. A decoy (no letter, a letter blocked or superseded, not
    enrolled, no such person) asks what a real start would: a block, or a new letter, must not move
    the numbers asked and so tell that codes had been used. A fresh letter's codes by those numbers
    are as new as any.

    Once every number is used on some letter (a PIN-code user's first letter used up, say), the first
    numbers not used on the latest letter: a fixed first number would soon be one a PIN login had used
    on the new letter, and every start after would be a decoy, with the person's unused codes in hand."""
    on_letter = set(standing.letter.used) if standing.letter else set()
    order = asking_order(keyer, person)
    for used in (standing.used | on_letter, on_letter):
        left = [i for i in order if i not in used]
        if len(left) >= count:
            return tuple(left[:count])
    return order[:count]
