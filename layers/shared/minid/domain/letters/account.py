"""A person's own letters: `GET /v1/me/pin-letters` and `POST /v1/me/pin-letters/block`."""

from __future__ import annotations

from datetime import datetime

from msgspec.structs import replace

from minid.domain.events import SecurityEvent, SecurityEventType
from minid.domain.keys import PersonKey
from minid.domain.letters.model import LetterStatus, PinLetter
from minid.domain.letters.ports import PinLetters
from minid.domain.time import Clock

# Letters whose codes work or may come to work; blocking stops them all.
_BLOCKABLE = (LetterStatus.ORDERED, LetterStatus.PRINTING, LetterStatus.DISPATCHED)


class PinLetterAccount:
    def __init__(self, letters: PinLetters, clock: Clock) -> None:
        self._letters = letters
        self._clock = clock

    def letters(self, person: PersonKey) -> list[PinLetter]:
        """The person's letters, newest first."""
        return [letter for letter in self._letters.letters_of(person) if letter.visible]

    def block(self, person: PersonKey) -> list[PinLetter]:
        """Block the active letter, and any on its way, so that none of their codes ever work. The answer
        is the list with each letter as the block left it: not the person's index read again, which is
        eventually consistent and could show a letter just blocked as it was."""
        now = self._clock.now()
        letters = [self._blocked(person, letter, now) for letter in self.letters(person)]
        return [letter for letter in letters if letter.visible]  # one read again may have been refused meanwhile

    def _blocked(self, person: PersonKey, letter: PinLetter, now: datetime) -> PinLetter:
        """The letter blocked if its codes work or may come to work, as the block left it."""
        if letter.status not in _BLOCKABLE:  # as listed: a letter blocked meanwhile (a double click) is left
            return letter
        blocked = SecurityEvent(SecurityEventType.PIN_LETTER_BLOCKED, now, letter.letter_id)
        if self._letters.block(person, letter.letter_id, now, (blocked,), used=letter.used.keys()):
            return replace(letter, status=LetterStatus.BLOCKED)
        return self._letters.get(letter.letter_id) or letter  # moved on meanwhile (blocked, superseded, failed)
