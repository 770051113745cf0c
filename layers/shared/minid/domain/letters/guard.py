"""Guessing a letter's codes: 5 wrong PIN codes on one letter, over every login and reset, block the letter
and tell its owner. (Not an enrolment's: it needs no secret but the number, and anyone could block the letter
so; the person's guesses a day bound it instead, domain/enrolment.py.)"""

from __future__ import annotations

import contextlib
from datetime import datetime

from minid.domain.events import SecurityEvent, SecurityEventLog, SecurityEventType
from minid.domain.keys import PersonKey
from minid.domain.letters.model import MAX_PIN_FAILURES_PER_LETTER, LetterStatus, PinLetter
from minid.domain.letters.ports import PinLetters
from minid.domain.notices import Notice, NoticeKind, NoticeQueue

__all__ = ["MAX_PIN_FAILURES_PER_LETTER", "WrongPinCodes"]


class WrongPinCodes:
    def __init__(self, letters: PinLetters, notices: NoticeQueue) -> None:
        self._letters = letters
        self._notices = notices

    def record(self, letter: PinLetter | None, now: datetime, *, counted: bool = True) -> None:
        """Count a wrong code against a posted letter; at the fifth, block it and tell the person. Not
        `counted` (a try whose PIN code was right, its other code wrong): the same write, counting nothing,
        so that the answer's time does not tell which of the two was wrong."""
        if letter is None or letter.status is not LetterStatus.DISPATCHED:
            return
        failures = self._letters.record_pin_failure(letter.letter_id, counted)
        if not counted or failures < MAX_PIN_FAILURES_PER_LETTER:
            return
        self._block(letter, now)

    def record_with(self, letter_id: str, person: PersonKey, failure: SecurityEvent, events: SecurityEventLog) -> bool:
        """Count a wrong code against a posted letter with the failure's event, in one write, when it does
        not block the letter; False when it would, or the letter is not posted, or the write failed: nothing
        written (`record` then, with the event written on its own: a guess is never left uncounted).

        A write that failed may have been made, its answer lost: its event (this write's alone) tells, and
        found, the guess is not counted twice. Not found, or not to be read (the events' table failing), it
        is taken for not made: a guess counted twice errs towards blocking the letter, one uncounted not."""
        try:
            return self._letters.record_pin_failure_with(letter_id, person, failure, MAX_PIN_FAILURES_PER_LETTER)
        except Exception:
            with contextlib.suppress(Exception):
                return events.contains(person, failure)
            return False

    def settle(self, letter: PinLetter | None, now: datetime) -> None:
        """A letter guessed out but still posted (the block after its fifth wrong code failed, or the request
        stopped before it): blocked now, and the person told. Its codes stopped working with the fifth."""
        if letter is not None and letter.status is LetterStatus.DISPATCHED and letter.guessed_out:
            self._block(letter, now)

    def _block(self, letter: PinLetter, now: datetime) -> None:
        blocked = SecurityEvent(
            SecurityEventType.PIN_LETTER_BLOCKED, now, letter.letter_id, {"reason": "wrong-pin-codes"}
        )
        # queued first and delivered once the block's event is written with it: a fault between them loses
        # neither; a letter blocked meanwhile (another wrong code at once) writes nothing here, and is told once
        notice = Notice(f"{letter.letter_id}:blocked", NoticeKind.PIN_LETTER_BLOCKED, letter.person, proof=blocked)
        self._notices.enqueue(notice)
        self._letters.block(letter.person, letter.letter_id, now, (blocked,), used=letter.used.keys())
