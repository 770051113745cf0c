"""Per-client limits, so that one client cannot spray many accounts or pump SMS.

A client is its IP address, counted by its keyed hash in fixed windows. The limits are generous for
people behind one address (a school, a workplace) and low for a script.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Protocol

from minid.domain.codes import RateLimited, counts_given_back_unless_sent
from minid.domain.keys import Keyer, PersonKey
from minid.values import Value


class Limit(Value, frozen=True):
    name: str
    max_hits: int
    window: timedelta


CODES_TO_PERSON_PER_HOUR = 10  # the template's default (CodesToPersonPerHour)
RESET_CODES_TO_PERSON_PER_DAY = 20  # the template's default (ResetCodesToPersonPerDay)
ENROLMENT_PIN_GUESSES_PER_DAY = 30  # the template's default (EnrolmentPinGuessesPerDay)
CLIENT_ENROLMENT_GUESSES_PER_HOUR = 20  # the template's default (ClientEnrolmentGuessesPerHour)


class ClientLimitPolicy(Value, frozen=True):
    """How much one client may do (settings, not constants: the defaults are the template's)."""

    # Attempts with an identity number (login, password reset): a guess each.
    identity_attempts: Limit = Limit("identity-attempts", 30, timedelta(minutes=1))
    # One-time codes sent by SMS or e-mail on a client's request.
    codes_sent: Limit = Limit("codes-sent", 60, timedelta(hours=1))
    # Codes sent to one person an hour, from any number of clients, by each way that sends them (a login,
    # a password reset, an enrolment, a contact change): each its own count, so that one way flooded does
    # not stop the others.
    codes_to_person_per_hour: int = CODES_TO_PERSON_PER_HOUR
    # Password resets' codes sent to one person a day (a UTC day), beside the hour's: anyone who knows the
    # number may start resets, and the hour's limit alone let 240 codes a day reach the person's phone,
    # each three guesses at its code for one who holds a letter with a PIN code unused (a letter's holder
    # may also enrol again with it: that is the letter's own risk, not the reset's)
    reset_codes_to_person_per_day: int = RESET_CODES_TO_PERSON_PER_DAY
    # Enrolments' guesses at one person's PIN codes a day (a UTC day), from any number of clients. Of the
    # guesses at a letter's codes, an enrolment's alone needs no other secret (a login's needs the password,
    # a reset's the code sent): counted toward the letter's block, as those are, anyone who knows a number
    # could block that person's letter with five. Bounded here instead, the letter kept: a pair of 6-digit
    # codes is one in 10^12, and 30 a day are one in 10^8 a year. (Past them, the person's own enrolment is
    # refused that day: not fewer, that keeping a person out takes more than a few requests a day.)
    enrolment_pin_guesses_per_day: int = ENROLMENT_PIN_GUESSES_PER_DAY
    # Enrolments' guesses a client makes an hour, at any numbers: past the person's a day, one address could
    # use up the guesses of some 4000 people a day (its starts, 30 a minute, 3 tries each), and keep them
    # out; with this, 16. An hour, not a day: one at a shared address (a school) who spends them shuts the
    # others out for an hour at most. Counted for every number alike (a decoy's too): refused, it tells
    # nothing of one.
    client_enrolment_guesses_per_hour: int = CLIENT_ENROLMENT_GUESSES_PER_HOUR
    # Orders of PIN code letters an hour: each starts a workflow, and a refused one is kept a while.
    letter_orders_per_hour: int = 30

    @classmethod
    def of(
        cls, identity_attempts_per_minute: int, codes_sent_per_hour: int, codes_to_person_per_hour: int
    ) -> ClientLimitPolicy:
        return cls(
            Limit("identity-attempts", identity_attempts_per_minute, timedelta(minutes=1)),
            Limit("codes-sent", codes_sent_per_hour, timedelta(hours=1)),
            codes_to_person_per_hour,
        )


FROM_THIS_CLIENT = "Too many requests from this client."


class Hit(Value, frozen=True):
    """A request of a client, to count against a limit: in its counter's window, if not full."""

    counter: str  # the limit's name, the client's keyed hash and the window: never the address itself
    max_hits: int
    window_ends: datetime
    refusal: str = FROM_THIS_CLIENT

    def refused(self, now: datetime) -> RateLimited:
        return RateLimited(int((self.window_ends - now).total_seconds()) + 1, self.refusal)


class RateCounter(Protocol):
    def hit(self, hit: Hit) -> bool:
        """Count the hit if fewer than its `max_hits` are counted in its window; False when full."""
        ...

    def give_back(self, hit: Hit) -> None:
        """Take back a hit counted (none below zero): what it counted did not happen after all."""
        ...


class ClientLimits:
    def __init__(self, counter: RateCounter, keyer: Keyer, policy: ClientLimitPolicy | None = None) -> None:
        self._counter = counter
        self._keyer = keyer
        self._policy = policy or ClientLimitPolicy()

    def identity_attempt(self, client: str, now: datetime) -> None:
        """An attempt with an identity number: counted for every number, known or not."""
        self.hit(self._policy.identity_attempts, client, now)

    def code_sent(self, client: str, now: datetime) -> Hit:
        """A code the client has sent (counted), or RateLimited; the hit, to give back if none is sent."""
        return self.hit(self._policy.codes_sent, client, now)

    def letter_order(self, client: str, now: datetime) -> None:
        self.hit(Limit("letter-orders", self._policy.letter_orders_per_hour, timedelta(hours=1)), client, now)

    def code_to_person(self, way: str, person: PersonKey, now: datetime) -> Hit:
        """A code sent to the person by `way` ("reset", "enrolment", "contact") counted, or RateLimited; the
        hit, to give back if none is sent."""
        return self.count(self.code_to_person_to_count(way, person, now), now)

    def reset_code_to_person_today(self, person: PersonKey, now: datetime) -> Hit:
        """A password reset's code sent to the person counted in the day's window (beside the hour's:
        code_to_person), or RateLimited; the hit, to give back if none is sent. Counted for any identity
        number, as the hour's."""
        limit = Limit("reset-codes-day", self._policy.reset_codes_to_person_per_day, timedelta(days=1))
        refusal = "Too many password reset codes have been sent to this person today."
        return self.count(self.to_count(limit, person, now, refusal), now)

    def enrolment_pin_guess(self, client: str, person: PersonKey, now: datetime) -> tuple[Hit, Hit | None]:
        """An enrolment's guess at the person's PIN codes, counted: the client's hour's (or RateLimited, for
        any number alike), then the person's day's, from whichever client. The hits, to give back if the
        codes were right; the person's None when their day's guesses are used up. (Not RateLimited: a refusal
        would tell that the number has a letter; the caller answers as to wrong codes.)"""
        hour = timedelta(hours=1)
        by_client = self.hit(
            Limit("enrolment-guesses", self._policy.client_enrolment_guesses_per_hour, hour), client, now
        )
        limit = Limit("enrolment-pin-guesses", self._policy.enrolment_pin_guesses_per_day, timedelta(days=1))
        hit = self.to_count(limit, person, now)
        # (the person's failing, the client's given back: nothing was judged)
        with counts_given_back_unless_sent(partial(self.give_back, [by_client]), ()):
            counted = self._counter.hit(hit)
        return by_client, hit if counted else None

    def give_back(self, hits: Sequence[Hit]) -> None:
        """Hits counted for codes none of which was sent (the provider refused, or was down): the limits
        are of codes sent, and a short outage must not use them up. The last counted first (the person's,
        counted after the client's), each whatever the others' give-back did; the first failure raised."""
        failed: Exception | None = None
        for hit in reversed(hits):
            try:
                self._counter.give_back(hit)
            except Exception as error:
                failed = failed or error
        if failed is not None:
            raise failed

    def code_to_person_to_count(self, way: str, person: PersonKey, now: datetime) -> Hit:
        """A code to send to the person by `way` ("login", ...), to be counted by the write that stores it.

        Refused for the person, whichever client asks: the answer says so rather than blame this client. It
        tells nothing of an account: the count is kept for any identity number given (see the callers)."""
        limit = Limit(f"{way}-codes", self._policy.codes_to_person_per_hour, timedelta(hours=1))
        return self.to_count(limit, person, now, "Too many codes have been sent to this person this hour.")

    def locked_attempt_told_to_count(self, person: PersonKey, now: datetime) -> Hit:
        """An attempt at the person's locked account told in their history, to be counted by the write that
        tells it: one an hour (each would be an event, and anyone giving the number may try, from many
        addresses: the history would be buried, a login of an intruder's far down it)."""
        limit = Limit("locked-told", 1, timedelta(hours=1))
        return self.to_count(limit, person, now, "An attempt at a locked account is told once an hour.")

    def identity_attempt_to_count(self, client: str, now: datetime) -> Hit:
        """An attempt with an identity number, to be counted by the write that records its judgement."""
        return self.to_count(self._policy.identity_attempts, client, now)

    def code_to_send(self, client: str, now: datetime) -> Hit:
        """A code to send, to be counted by the write that stores it (refused: Hit.refused)."""
        return self.to_count(self._policy.codes_sent, client, now)

    def hit(self, limit: Limit, client: str, now: datetime, refusal: str = FROM_THIS_CLIENT) -> Hit:
        """Count a request of the client (or of the person, with a `refusal` that says so), or raise
        RateLimited with the seconds until the window ends; the hit counted."""
        return self.count(self.to_count(limit, client, now, refusal), now)

    def count(self, hit: Hit, now: datetime) -> Hit:
        """Count the hit alone (and return it), or raise RateLimited when its window is full."""
        if not self._counter.hit(hit):
            raise hit.refused(now)
        return hit

    def to_count(self, limit: Limit, client: str, now: datetime, refusal: str = FROM_THIS_CLIENT) -> Hit:
        """A request of the client (or of the person), to be counted by the write it makes."""
        seconds = int(limit.window.total_seconds())
        start = int(now.timestamp()) // seconds * seconds
        window_ends = datetime.fromtimestamp(start + seconds, tz=now.tzinfo)
        return Hit(f"{limit.name}#{self._keyer.client_key(client)}#{start}", limit.max_hits, window_ends, refusal)
