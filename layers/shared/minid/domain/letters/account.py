"""A person's own letters: `GET /v1/me/pin-letters` and `POST /v1/me/pin-letters/block`."""

from __future__ import annotations

from datetime import datetime

from msgspec.structs import replace

from minid.domain.events import SecurityEvent, SecurityEventType
from minid.domain.keys import PersonKey
from minid.domain.letters.model import LetterStatus, PinLetter
from minid.domain.letters.ports import PinLetters
from minid.domain.notices import Notice, NoticeKind, NoticeQueue
from minid.domain.time import Clock, date_in_norway

# Letters whose codes work or may come to work; blocking stops them all.
_BLOCKABLE = (LetterStatus.ORDERED, LetterStatus.PRINTING, LetterStatus.DISPATCHED)
# The order they are blocked in; any other (not blocked) last.
_BLOCKED_FIRST = (LetterStatus.DISPATCHED, LetterStatus.PRINTING, LetterStatus.ORDERED, *LetterStatus)


class PinLetterAccount:
    def __init__(self, letters: PinLetters, clock: Clock, notices: NoticeQueue) -> None:
        """`notices`: where the person is told of a block."""
        self._letters = letters
        self._clock = clock
        self._notices = notices

    def letters(self, person: PersonKey) -> list[PinLetter]:
        """The person's letters, newest first."""
        now = self._clock.now()
        return [letter for letter in self._letters.letters_of(person) if letter.visible and not letter.abandoned(now)]

    def block(self, person: PersonKey) -> list[PinLetter]:
        """Block the active letter, and any on its way, so that none of their codes ever work; the person
        is told on their contacts once (one who took over a session must not block the letters unseen).
        The answer is the list with each letter as the block left it: not the person's index read again,
        which is eventually consistent and could show a letter just blocked as it was."""
        return self.blocked_by(person, support=False)[0]

    def blocked_by(self, person: PersonKey, *, support: bool) -> tuple[list[PinLetter], int]:
        """As `block`, by the person (`support` False) or by user support on their call (told so, in the
        person's history and the notice); and how many blocks this made (none: blocked before, or meanwhile)."""
        now = self._clock.now()
        listed = self.letters(person)
        left: dict[str, PinLetter] = {}
        made_here = 0
        # the posted letter first, whose codes work now: a block that fails after it (a 503, to be made
        # again) never leaves them working when the person has been told of a block of the others (and one
        # at the printer before one ordered: the index, eventually consistent, may list one just posted so)
        for letter in sorted(listed, key=lambda letter: _BLOCKED_FIRST.index(letter.status)):
            left[letter.letter_id], made = self._blocked(person, letter, now, tell=not made_here, support=support)
            made_here += made
        # newest first, as listed; one read again may have been refused meanwhile
        return [left[letter.letter_id] for letter in listed if left[letter.letter_id].visible], made_here

    def _blocked(
        self, person: PersonKey, letter: PinLetter, now: datetime, *, tell: bool, support: bool
    ) -> tuple[PinLetter, bool]:
        """The letter blocked if its codes work or may come to work, as the block left it; and whether
        this block was made."""
        if letter.status not in _BLOCKABLE:  # as listed: a letter blocked meanwhile (a double click) is left
            return letter, False
        by = {"by": "support"} if support else {}
        blocked = SecurityEvent(SecurityEventType.PIN_LETTER_BLOCKED, now, letter.letter_id, by)
        if tell:
            # queued first with the block's event as its proof, as every notice of a change: delivered once
            # the event is written, dropped if this block is not made (the next letter's then tells)
            self._notices.enqueue(
                Notice(
                    f"{letter.letter_id}:blocked-by-owner",
                    NoticeKind.PIN_LETTERS_BLOCKED_BY_OWNER,
                    person,
                    params={"date": date_in_norway(now).isoformat(), **by},
                    proof=blocked,
                )
            )
        if self._letters.block(person, letter.letter_id, now, (blocked,), used=letter.used.keys()):
            return replace(letter, status=LetterStatus.BLOCKED), True
        # moved on meanwhile (blocked, superseded, failed)
        return self._letters.get(letter.letter_id) or letter, False
