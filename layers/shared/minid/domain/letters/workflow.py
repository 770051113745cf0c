"""The tasks of the PIN-letter workflow (statemachines/pin_letter.asl.json).

Each task takes only the letter id and reads the rest from the tables, so that no identity number,
code or address passes through the workflow. Each is idempotent: run again after a failure or a
retry, it finds what the earlier run did and completes it, and never makes a second set of codes.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import timedelta

from minid.domain.contacts import Language
from minid.domain.errors import NotFound
from minid.domain.events import SecurityEvent, SecurityEventType
from minid.domain.letters.model import (
    Activation,
    Ineligibility,
    LetterStatus,
    PinLetter,
    PrintDocument,
    QuotaPolicy,
    RecipientOutcome,
    generate_pin_codes,
    letter_address,
    letter_language,
    recipient_ineligibility,
)
from minid.domain.letters.ports import (
    PinCodeHasher,
    PinLetters,
    PrintDocuments,
    PrintedLetter,
    QuotaReservation,
    Recipients,
    RefusalRecorded,
)
from minid.domain.notices import Notice, NoticeKind, NoticeQueue
from minid.domain.population import Person, PopulationRegister
from minid.domain.random import RandomSource
from minid.domain.time import Clock, date_in_norway, today_in_norway

NORWAY_COUNTRY_CODE = "NO"
SETTLE_ATTEMPTS = 10  # checks of a recipient, each after the letter or the ledger changed under the last


# How long after its activation a posted letter's document is tried again while S3 fails to delete it
# (the workflow's retry): then it is left for the bucket's expiry and the operators, and the workflow goes
# on. Its retries would otherwise run out, and a posted letter be taken for one not posted (its operators
# told so, the person told nothing).
DOCUMENT_DELETE_RETRIED_FOR = timedelta(minutes=30)


class DocumentLeft(Exception):
    """The activation is written (the letter posted, its codes working or not as `activation` says), and
    its print document could not be deleted: the error is the cause. Told apart from a failed activation,
    which marks the letter failed. `retry`: whether to try again (a transient error), or give up on it."""

    def __init__(self, activation: Activation, *, retry: bool) -> None:
        super().__init__(f"activated ({activation.value}), the print document left")
        self.activation = activation
        self.retry = retry


class UnsentDocumentLeft(Exception):
    """The codes' write failed, and the document made for them could not be deleted: left for the bucket's
    expiry and the operators. `held_unknown`: the letter could not be read, so whether it holds the
    document (the write made, its answer lost: then it is the letter's, to be printed) is not known; else
    the letter does not hold it (never sent, its codes never working). `error`: the write's (the task
    tried again for it as ever); the clean-up's is the cause."""

    def __init__(self, error: Exception, *, held_unknown: bool) -> None:
        super().__init__("the codes' write failed, and the document made for them was left")
        self.error = error
        self.held_unknown = held_unknown


# What the person is told of, of what makes a letter impossible (on their contacts, where they have a MinID)
TOLD = {
    Ineligibility.NO_ADDRESS: RecipientOutcome.NO_ADDRESS,
    Ineligibility.PROTECTED_ADDRESS: RecipientOutcome.PROTECTED_ADDRESS,
    Ineligibility.CEASED: RecipientOutcome.NUMBER_REPLACED,
}
# the refusals told to the person and in their history (the state machine's NotifyRefused choices)
TOLD_REFUSALS = frozenset(
    {
        RecipientOutcome.QUOTA,
        RecipientOutcome.NO_ADDRESS,
        RecipientOutcome.NUMBER_REPLACED,
        RecipientOutcome.UNPRINTABLE,
        RecipientOutcome.PROTECTED_ADDRESS,
    }
)


def _why_not(person: Person | None, address: tuple[str, ...] | None) -> str:
    """Why a letter checked as one to send was not, the recipient changed since (`address`: theirs as the
    letter would have it): the name its failure is recorded under."""
    if person is not None and person.address_withheld:
        return "AddressWithheld"
    if person is None or address is None:
        return "NoAddress"
    return "Deceased" if not person.alive else "Ceased"


class KeptChanging(Exception):
    """The letter, or the person's letters, changed under every attempt: other runs at the same moment (a
    person's letters posted at once, say). Not a fault: for the workflow's retry (DependencyUnavailable), as
    a throttle is. A posted letter's activation given up for it would be marked failed, its codes dead."""


class LetterWorkflowTasks:
    def __init__(
        self,
        *,
        letters: PinLetters,
        recipients: Recipients,
        population: PopulationRegister,
        documents: PrintDocuments,
        notices: NoticeQueue,
        keyer: PinCodeHasher,  # preparing a letter alone hashes (its codes): no other task needs the pepper
        random: RandomSource,
        clock: Clock,
        quota: QuotaPolicy | None = None,
        unhurried: Callable[[], AbstractContextManager[None]] = nullcontext,
    ) -> None:
        """`unhurried`: calls made inside it are made whatever the time left of the invocation (a document's
        clean-up after its codes' write failed, perhaps as the time ran out: minid.deadline.exempt)."""
        self._unhurried = unhurried
        self._letters = letters
        self._recipients = recipients
        self._population = population
        self._documents = documents
        self._notices = notices
        self._keyer = keyer
        self._random = random
        self._clock = clock
        self._quota = quota or QuotaPolicy()

    def _letter(self, letter_id: str) -> PinLetter:
        letter = self._letters.get(letter_id)
        if letter is None:
            raise NotFound(f"No letter {letter_id}.")
        return letter

    def validate_recipient(self, letter_id: str) -> RecipientOutcome:
        """Alive, an address to send to, old enough, within the quota, and a name and address the letter can
        print: the outcome, the quota reserved and the event written at once, with the letter and the
        ledger as read."""
        for _ in range(SETTLE_ATTEMPTS):
            letter = self._letter(letter_id)
            if letter.outcome is not None:
                return letter.outcome
            if letter.status is LetterStatus.FAILED:  # failed before its check (one still running, given up on
                # by the workflow): accepted now, it would hold a place in the quota that nothing frees
                raise NotFound("The letter failed before its recipient was checked.")
            standing = self._recipients.read(letter.person)
            now = self._clock.now()
            reservation = quota_as_read = None
            person, today = standing.person, today_in_norway(self._clock)
            why = recipient_ineligibility(person, today) if person is not None else None
            if person is None or why is not None:
                outcome = TOLD.get(why, RecipientOutcome.INELIGIBLE) if why else RecipientOutcome.INELIGIBLE
            elif letter_id in standing.orders:  # reserved by a run from before the outcome was written with it
                outcome = RecipientOutcome.ACCEPTED
            elif not self._quota.allows(standing.orders.values(), now):
                # by when each was placed, not checked: a check held up (a throttled workflow, a keyed
                # retry after a failed start) would make the same order sent twice seem minutes apart
                repeated = self._quota.repeats(standing.placed_orders().values(), letter.ordered_at)
                outcome = RecipientOutcome.REPEATED if repeated else RecipientOutcome.QUOTA
                quota_as_read = standing.ledger_version  # a place freed meanwhile (a letter blocked) is taken
            elif not self._documents.printable(person.name, letter_address(person) or ()):
                outcome = RecipientOutcome.UNPRINTABLE  # (checked last: it loads the letter's font)
            else:
                outcome = RecipientOutcome.ACCEPTED
                # blocked before its check: never sent, and it holds no place in the quota (a check running
                # late, its workflow ended, would hold one that nothing frees)
                if letter.status is not LetterStatus.BLOCKED:
                    # the quota's times are when each was accepted (the 24 hours from the letter's check, as
                    # API.md has it: from when it was placed, a check a day late would let the next through)
                    orders = self._quota.recent(standing.orders, now) | {letter_id: now}
                    placed = {i: at for i, at in standing.placed_orders().items() if i in orders}
                    reservation = QuotaReservation(
                        orders, standing.ledger_version, placed | {letter_id: letter.ordered_at}
                    )
            kind = (
                SecurityEventType.PIN_LETTER_ORDERED
                if outcome is RecipientOutcome.ACCEPTED
                else SecurityEventType.PIN_LETTER_REFUSED
                if outcome in TOLD_REFUSALS
                else None
            )
            # why a refusal was made, in the person's history (as the notice tells), once a day for each
            # reason, as the notice is told: anyone may order in anyone's name, and an event for each order
            # refused would bury what the person must find there (a lock, a contact changed) under pages
            refusal = None
            if kind is SecurityEventType.PIN_LETTER_REFUSED:
                refusal = RefusalRecorded(outcome, date_in_norway(letter.ordered_at))
                recorded = standing.refusals_recorded.get(outcome)
                if recorded is not None and recorded >= refusal.day:  # (or a later day's: one settled late)
                    kind = refusal = None
            detail = {"reason": outcome.value} if refusal is not None else {}
            events = [SecurityEvent(kind, letter.ordered_at, letter_id, detail)] if kind is not None else []
            language = letter_language(person, standing.language)
            settled = self._recipients.settle(
                letter, outcome, language, reservation, events, refusal=refusal, quota_as_read=quota_as_read
            )
            if settled:
                return outcome
        raise KeptChanging("the letter or the person's ledger changed under every attempt")

    def prepare_letter(self, letter_id: str) -> PrintDocument | None:
        """Generate the codes and the print document; None when the letter is no longer to be sent."""
        letter = self._letter(letter_id)
        if letter.document is not None and letter.status is LetterStatus.PRINTING:
            return letter.document  # made by a run before whose answer was lost
        person = self._population.find(letter.person)
        address = letter_address(person) if person is not None else None
        if letter.status is LetterStatus.BLOCKED:  # blocked before it was printed: no letter is sent
            # its place in the quota (reserved when the recipient was checked) is freed, as a failed letter's;
            # and a document made by a run before whose answer was lost goes (its codes in clear), unsent
            self._letters.release_quota(letter.person, letter_id)
            self._discard_document(letter)
            return None
        if letter.status is not LetterStatus.ORDERED:
            if letter.status is LetterStatus.FAILED:
                # failed by a run before this one (the recipient gone since the check) whose release of its
                # place in the quota, or whose notice, failed after it: finished now (each once, whatever was done)
                self._fail(letter, "Failed")
            return None
        if person is None or address is None or not person.in_use:
            # gone from the register, without an address, or dead (no codes to a dead person's mailbox), since
            # validated: failed, not left ordered keeping its place in the quota
            self._fail(letter, _why_not(person, address))
            return None
        codes = generate_pin_codes(self._random)
        # hashed before the document is stored: the hasher may read the pepper now (its first hash in the
        # function's environment), and a read that fails leaves nothing behind, not codes in clear unheld
        hashes = {index: self._keyer.pin_code_hash(letter_id, index, code) for index, code in codes.items()}
        country = person.address_abroad.country_code if person.abroad and person.address_abroad else None
        document = self._documents.store(
            PrintedLetter(
                letter_id=letter_id,
                name=person.name,
                address=address,
                country_code=country or NORWAY_COUNTRY_CODE,
                codes=codes,
                language=letter.language or Language.BOKMAL,
                dated=today_in_norway(self._clock),
            )
        )
        try:
            attached = self._letters.attach_codes(letter_id, hashes, document)
        except Exception as error:
            # The write may have been made and its answer lost: the letter tells. A document it does not
            # hold is never sent, and goes (its codes in clear); one it holds must stay. Unread, it stays
            # for the bucket's expiry (gone, the provider could not fetch a letter that holds it), and the
            # operators are told. Whatever the time left: the write may have failed for want of it.
            with self._unhurried():
                try:
                    stored = self._letters.get(letter_id)
                except Exception as unread:
                    raise UnsentDocumentLeft(error, held_unknown=True) from unread
                if stored is None or stored.document != document:
                    try:
                        self._documents.discard(document)
                    except Exception as undeleted:
                        raise UnsentDocumentLeft(error, held_unknown=False) from undeleted
            raise
        return document if attached else self._not_attached(letter_id, document)

    def _not_attached(self, letter_id: str, document: PrintDocument) -> PrintDocument | None:
        """The codes' write found its condition gone: another run attached its codes first, or the letter
        was blocked; or it was written by an attempt of this run whose answer was lost, the SDK's retry then
        finding its condition gone. The document to send, if any."""
        now_read = self._letter(letter_id)
        held = now_read.document
        if now_read.status is LetterStatus.BLOCKED:
            # blocked while its document was made, or after this run's codes were attached (their answer
            # lost): no letter is sent, as a run after this one would find (above); its place is freed
            self._letters.release_quota(now_read.person, letter_id)
            for made in {document} | ({held} if held else set()):  # this run's, and one another run attached
                self._documents.discard(made)
            return None
        if held != document:
            self._documents.discard(document)  # never sent
        return held

    def activate(self, letter_id: str) -> Activation:
        """The print provider posted the letter: its codes work from now, and older letters' stop. Two of a
        person's letters posted at once are activated one after the other (each holds on the ledger's
        pointer as read): the newer one is the person's active letter, whichever comes first."""
        for _ in range(SETTLE_ATTEMPTS):
            letter = self._letter(letter_id)
            activation = self._activation(letter)
            if activation is not None:
                try:
                    self._discard_document(letter)
                except Exception as error:  # the letter is posted all the same: not to be marked failed
                    activated_at = letter.dispatched_at  # None: activated by this attempt, now
                    retry = activated_at is None or self._clock.now() - activated_at < DOCUMENT_DELETE_RETRIED_FOR
                    raise DocumentLeft(activation, retry=retry) from error
                return activation
        raise KeptChanging("the person's letters changed under every attempt")

    def _discard_document(self, letter: PinLetter) -> None:
        """The letter is posted, or will never be: its print document (the name, the address and every code
        in clear) has served its purpose, and goes now rather than at the bucket's expiry. A print job still
        queued for a failed letter then cannot be printed. (Again, on a retry, it finds nothing to delete.)"""
        if letter.document is not None:
            self._documents.discard(letter.document)

    def _activation(self, letter: PinLetter) -> Activation | None:
        """The activation written, or None if a letter changed meanwhile (read again)."""
        settled = {
            LetterStatus.DISPATCHED: Activation.ACTIVE,
            LetterStatus.SUPERSEDED: Activation.SUPERSEDED,
        }.get(letter.status)
        if settled is not None:
            return settled
        now = self._clock.now()
        if letter.status is LetterStatus.BLOCKED:
            if letter.dispatched_at is not None:  # its posting written before (by a run of the task, or it was
                return Activation.BLOCKED  # blocked after): it stands, and with it the delete's time (`activate`)
            return Activation.BLOCKED if self._letters.record_dispatch(letter, now, activate=False) else None
        pointers = self._letters.pointers(letter.person)
        active_id = pointers.active
        # the posted ones, each read again: the active letter; the one activated last (the person's index,
        # eventually consistent, may not show it posted yet); and any the index shows posted
        listed = self._letters.letters_of(letter.person)
        ids = {o.letter_id for o in listed if o.status is LetterStatus.DISPATCHED}
        ids |= {pointer for pointer in (active_id, pointers.latest) if pointer}
        others = [o for i in sorted(ids - {letter.letter_id}) if (o := self._letters.get(i)) is not None]
        posted = [other for other in others if other.status is LetterStatus.DISPATCHED]
        # a newer letter posted before supersedes this one, though it has since been blocked (its fifth
        # wrong code, or its owner): an older letter's codes must not come back to life
        posted_before = [o for o in [*listed, *others] if o.letter_id != letter.letter_id and o.dispatched_at]
        if any(other.ordered_at > letter.ordered_at for other in [*posted, *posted_before]):
            return Activation.SUPERSEDED if self._letters.record_dispatch(letter, now, activate=False) else None
        older = [other.letter_id for other in posted]
        # the codes used on the person's other letters stay theirs: the numbers asked without a login
        # must not start afresh with a new letter (LetterStanding.used)
        used = {i for other in [*listed, *posted] for i in other.used}
        posted_event = SecurityEvent(SecurityEventType.PIN_LETTER_POSTED, now, letter.letter_id)
        if not self._letters.record_dispatch(  # with its event: a crash after it would have lost the event
            letter, now, activate=True, supersede=older, pointers_were=pointers, used=used, events=[posted_event]
        ):
            return None
        return Activation.ACTIVE

    def mark_failed(self, letter_id: str, error: str) -> None:
        """Not posted: the letter's codes never work, and it does not count against the quota."""
        self._fail(self._letter(letter_id), error)

    def _fail(self, letter: PinLetter, error: str) -> None:
        if letter.status is LetterStatus.BLOCKED and letter.dispatched_at is None:
            # blocked at the printer, and then not posted: it stays blocked (the person chose that, and is not
            # told again), and its place in the quota is freed, as a failed letter's
            self._letters.release_quota(letter.person, letter.letter_id)
            self._discard_document(letter)
            return
        if letter.status in (LetterStatus.ORDERED, LetterStatus.PRINTING):
            now = self._clock.now()
            # in the person's history beside its order (a letter refused before it was accepted has its
            # refusal there): with the failure's write, once, as its order's and its posting's are
            accepted = letter.outcome is RecipientOutcome.ACCEPTED
            failed = [SecurityEvent(SecurityEventType.PIN_LETTER_FAILED, now, letter.letter_id)] if accepted else []
            if not self._letters.mark_failed(letter, now, error, failed):
                # changed since read: blocked (the person is not told it failed), posted (it did not), or
                # failed (by this write, its answer lost: the SDK's retry refused); judged as it is now
                self._fail(self._letter(letter.letter_id), error)
                return
        elif letter.status is not LetterStatus.FAILED:
            if letter.status is LetterStatus.REFUSED and letter.outcome in TOLD_REFUSALS:
                # refused by its check after all (one running late, or whose task failed after its write): the
                # refusal, in the history, is told as NotifyRefused would have (which never ran)
                self._tell(letter, NoticeKind.PIN_LETTER_REFUSED)
            if letter.dispatched_at is not None:
                # posted after all (its activation written, its task then failed for good: the function
                # stopped, say): it works, and its document, which that task did not delete, has served
                self._discard_document(letter)
            return
        # failed, now or by a run before whose release did not happen: released (once; again it does nothing)
        self._letters.release_quota(letter.person, letter.letter_id)
        # the person is told (once a day, whatever fails), not left waiting for a letter that never comes; of
        # a letter that was accepted alone (as its event): one failed before its recipient was settled (an
        # outage) may have been refused (the quota, a double click whose first is on its way, a number no
        # longer the person's), and would tell of a failure the history does not hold
        if letter.outcome is RecipientOutcome.ACCEPTED:
            self._tell(letter, NoticeKind.PIN_LETTER_FAILED)
        # last: a document that cannot be deleted (S3 refusing for good) fails the task, and the execution
        # alarms, but takes neither the person's place in the quota nor their notice with it
        self._discard_document(letter)

    def notify(self, letter_id: str, kind: NoticeKind) -> None:
        self._tell(self._letter(letter_id), kind)

    def _tell(self, letter: PinLetter, kind: NoticeKind) -> None:
        day = date_in_norway(letter.dispatched_at or letter.ordered_at)
        # A refusal or a failure is told once a day, however many orders were refused or failed: anyone may
        # order in a person's name, and a notice per order would let them send that person (and us the bill
        # for) an SMS a try.
        daily = kind in (NoticeKind.PIN_LETTER_REFUSED, NoticeKind.PIN_LETTER_FAILED)
        about = f"{letter.person}:{day.isoformat()}" if daily else letter.letter_id
        params = {"date": day.isoformat()}
        if kind is NoticeKind.PIN_LETTER_REFUSED and letter.outcome is not None:
            params["reason"] = letter.outcome.value  # the quota, no address, a number replaced, unprintable,
            # an address withheld
            if letter.outcome is not RecipientOutcome.QUOTA:  # each reason told once a day: they say different
                about += f":{letter.outcome.value}"  # things to do (at most five a day, then)
        self._notices.enqueue(Notice(f"{about}:{kind.value}", kind, letter.person, params=params))
