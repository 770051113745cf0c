"""Ordering a PIN code letter: `POST /v1/pin-letters`.

Every valid identity number is answered alike and costs the same work: the order is recorded and its
workflow started whether or not the person exists or may be sent a letter. The workflow decides,
out of sight of the caller, and tells the person on their own contacts where there is something to tell.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Protocol

from minid.domain.codes import RateLimited
from minid.domain.identity import parse_identity_number
from minid.domain.keys import Keyer, KeyPurpose, PersonKey
from minid.domain.letters.model import ONCE_ONLY_FOR, LetterStatus, PinLetter
from minid.domain.letters.ports import LetterWorkflow, PinLetters
from minid.domain.random import RandomSource, new_id
from minid.domain.rate_limits import ClientLimits
from minid.domain.time import Clock, today_in_norway

# An order the workflow never took up (its start failed) disappears on its own after this.
UNSTARTED_ORDER_KEPT_FOR = timedelta(days=7)


class OnceOnly(Protocol):
    """Runs an action once per key: a repeated call with the same key returns the first result. The
    action must itself be safe to repeat (a record can be lost between the action and its answer):
    an order's letter id follows from its key."""

    def __call__(self, key: Mapping[str, str], action: Callable[[], dict[str, str]]) -> dict[str, str]: ...


class PinLetterOrdering:
    def __init__(
        self,
        *,
        letters: PinLetters,
        workflow: LetterWorkflow,
        once_only: OnceOnly,
        keyer: Keyer,
        random: RandomSource,
        clock: Clock,
        allow_synthetic: bool,
        limits: ClientLimits,
    ) -> None:
        self._limits = limits
        self._letters = letters
        self._workflow = workflow
        self._once_only = once_only
        self._keyer = keyer
        self._random = random
        self._clock = clock
        self._allow_synthetic = allow_synthetic

    def order(self, identity_number: str, client: str, idempotency_key: str | None = None) -> None:
        """Order a letter; raises InvalidIdentityNumber for a number that is not valid, and RateLimited
        past the client's orders an hour (each order starts a workflow, and a refused one is kept).

        With an idempotency key, a repeated request from the same person is the same order.
        """
        number = parse_identity_number(
            identity_number, allow_synthetic=self._allow_synthetic, today=today_in_norway(self._clock)
        )
        person = self._keyer.person_key(number)
        if idempotency_key is None:
            self._place(person, new_id(self._random), client, keyed=False)
        else:
            # The letter id follows from the person and the key: should the once-only record be lost
            # between the order and its answer, doing it again finds the same order and workflow.
            digest = self._keyer.digest(KeyPurpose.ORDER, f"{person}#{idempotency_key}")
            letter_id = str(uuid.UUID(hex=digest[:32], version=4))
            key = {"person": person, "idempotency_key": idempotency_key}
            self._once_only(key, lambda: self._place(person, letter_id, client, keyed=True))

    def _place(self, person: PersonKey, letter_id: str, client: str, *, keyed: bool) -> dict[str, str]:
        now = self._clock.now()
        # counted only for an order placed: a retry with its idempotency key gets its first answer
        try:
            self._limits.letter_order(client, now)
        except RateLimited:
            # unless it is that order's own retry: its key's order there, placed (and counted) within the
            # once-only time, by a first whose answer was a failure after the count (its start, say) or that
            # is still in progress. No order there yet (the first refused too, say): refused, so that a key
            # sent many times at once orders nothing past the limit.
            if not (keyed and self._ordered_within_once_only(letter_id, now)):
                raise
        there = self._record(person, letter_id, now)
        if there is not None and now - there >= ONCE_ONLY_FOR:
            # the key used again after its first use was forgotten: a new order, not that one again (whose
            # workflow has run, and would not run a second time under the same id)
            letter_id = new_id(self._random)
            there = self._record(person, letter_id, now)
            keyed = False  # an id of its own: no other request can be starting it
        try:
            self._workflow.start(letter_id)
        except Exception:
            # A start may be made and its answer lost: then the workflow runs, and the order stands (taken
            # away, the workflow would fail for want of its letter, and a retry's order would never run).
            # Not known, it is left to its expiry: a retry with the idempotency key finds it. Nor is a keyed
            # order taken away when its start is known to have failed: another request with the same key,
            # at once, may have found it recorded and have its start yet to come (taken away, its workflow
            # would find no letter, and its 202 would order nothing). A retry with the key starts it.
            if not self._workflow.started(letter_id):
                if not keyed:
                    self._letters.discard_order(letter_id)
                raise
        return {"letter_id": letter_id}

    def _ordered_within_once_only(self, letter_id: str, now: datetime) -> bool:
        there = self._letters.get(letter_id)
        return there is not None and now - there.ordered_at < ONCE_ONLY_FOR

    def _record(self, person: PersonKey, letter_id: str, now: datetime) -> datetime | None:
        """The order recorded under its id: None, or the time of the order already there."""
        letter = PinLetter(letter_id=letter_id, person=person, status=LetterStatus.ORDERED, ordered_at=now)
        return self._letters.create_order(letter, expires_at=now + UNSTARTED_ORDER_KEPT_FOR)
