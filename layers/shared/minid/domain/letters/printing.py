"""What the letter says, and the print provider's reports on it."""

from __future__ import annotations

import re

from minid.domain.contacts import Language
from minid.domain.errors import Conflict, NotFound
from minid.domain.letters.model import LetterStatus
from minid.domain.letters.ports import LetterWorkflow, PinLetters, PrintedLetter, PrintReport, ReportedStatus
from minid.domain.notices import SUPPORT_PHONE, long_date
from minid.values import Value

SENDER = ("Digitaliseringsdirektoratet", "Postboks 1382 Vika", "0114 Oslo")
# the support number as the letter prints it: with no-break spaces, never broken over two lines (a number
# dialled from the first would be a wrong one)
_PHONE = SUPPORT_PHONE.replace(" ", "\u00a0")


class LetterText(Value, frozen=True):
    __hidden__ = frozenset({"greeting"})  # left out of repr: it names the person

    title: str
    dated: str
    greeting: str
    introduction: tuple[str, ...]
    codes_heading: str
    keep_safe: str
    not_ordered_heading: str
    not_ordered: str
    reference: str


def letter_text(letter: PrintedLetter) -> LetterText:
    """The letter in the person's language: bokmål, nynorsk or English."""
    reference = letter.letter_id.split("-")[0].upper()
    if letter.language is Language.ENGLISH:
        return LetterText(
            title="Your PIN codes for MinID",
            dated=f"Oslo, {long_date(letter.dated, Language.ENGLISH)}",
            greeting=f"Dear {letter.name},",
            introduction=(
                "Here are the PIN codes you ordered for MinID, the public electronic ID. To become a MinID "
                "user, log in with your national identity number or D-number and two of these codes, which "
                "the service asks for by number, and choose a password of your own.",
                "Afterwards you log in with your password and a one-time code by SMS, or a PIN code from this "
                "letter. Each code works once. The codes work from the day this letter was posted, and stop "
                "working when a newer letter is posted to you.",
            ),
            codes_heading="Your PIN codes",
            keep_safe="Keep this letter safe: a code from it makes a new password if you forget yours. Never "
            "give the codes to anyone: we never ask for them by phone, e-mail or SMS. If you lose the letter, "
            "log in to MinID and block the codes, and order new ones.",
            not_ordered_heading="Did you not order this letter?",
            not_ordered="Then someone else may have ordered it in your name. The codes are of no use without "
            "this letter. Shred it, or block the codes when you have logged in. MinID user support: "
            f"+47\u00a0{_PHONE}.",
            reference=f"Letter reference {reference}",
        )
    if letter.language is Language.NYNORSK:
        return LetterText(
            title="PIN-kodane dine til MinID",
            dated=f"Oslo, {long_date(letter.dated, Language.NYNORSK)}",
            greeting=f"Hei, {letter.name}.",
            introduction=(
                "Her er PIN-kodane du bestilte til MinID, den offentlege elektroniske ID-en. For å bli brukar av "
                "MinID loggar du inn med fødselsnummeret eller D-nummeret ditt og to av desse kodane, som "
                "tenesta ber om etter nummer, og lagar eit passord sjølv.",
                "Seinare loggar du inn med passordet og ein eingongskode på SMS, eller ein PIN-kode frå dette "
                "brevet. Kvar kode verkar éin gong. Kodane verkar frå dagen brevet vart postlagt, og sluttar å "
                "verke når eit nyare brev er sendt til deg.",
            ),
            codes_heading="PIN-kodane dine",
            keep_safe="Ta godt vare på brevet: gløymer du passordet, lagar du eit nytt med ein kode frå det. "
            "Gi aldri kodane til nokon: vi spør aldri etter dei på telefon, "
            "e-post eller SMS. Mistar du brevet, loggar du inn på MinID, sperrar kodane og bestiller nye.",
            not_ordered_heading="Har du ikkje bestilt dette brevet?",
            not_ordered="Då kan nokon andre ha bestilt det i namnet ditt. Kodane er til inga nytte utan dette "
            f"brevet. Makuler det, eller sperr kodane når du har logga inn. Brukarstøtte for MinID: {_PHONE}.",
            reference=f"Brevreferanse {reference}",
        )
    return LetterText(
        title="PIN-kodene dine til MinID",
        dated=f"Oslo, {long_date(letter.dated, Language.BOKMAL)}",
        greeting=f"Hei, {letter.name}.",
        introduction=(
            "Her er PIN-kodene du bestilte til MinID, den offentlige elektroniske ID-en. For å bli bruker av "
            "MinID logger du inn med fødselsnummeret eller D-nummeret ditt og to av disse kodene, som "
            "tjenesten ber om etter nummer, og lager et passord selv.",
            "Senere logger du inn med passordet og en engangskode på SMS, eller en PIN-kode fra dette brevet. "
            "Hver kode virker én gang. Kodene virker fra dagen brevet ble postlagt, og slutter å virke når "
            "et nyere brev er sendt til deg.",
        ),
        codes_heading="PIN-kodene dine",
        keep_safe="Ta godt vare på brevet: glemmer du passordet, lager du et nytt med en kode fra det. "
        "Gi aldri kodene til noen: vi spør aldri etter dem på telefon, "
        "e-post eller SMS. Mister du brevet, logger du inn på MinID, sperrer kodene og bestiller nye.",
        not_ordered_heading="Har du ikke bestilt dette brevet?",
        not_ordered="Da kan noen andre ha bestilt det i ditt navn. Kodene er til ingen nytte uten dette brevet. "
        f"Makuler det, eller sperr kodene når du har logget inn. Brukerstøtte for MinID: {_PHONE}.",
        reference=f"Brevreferanse {reference}",
    )


# A caller's ARN as STS gives it for a role's session, the whole of it: an IAM user's path may hold
# ":assumed-role/<role>/" (a path takes any printable character), so a mere search of the text would
# take such a user for the role.
_ASSUMED_ROLE = re.compile(r"arn:aws(?:-[a-z]+)*:sts::(\d{12}):assumed-role/([\w+=,.@-]{1,64})/[\w+=,.@-]{2,64}")


def role_of(caller_arn: str | None) -> tuple[str, str] | None:
    """The account and the IAM role behind a caller: `arn:aws:sts::<account>:assumed-role/<role>/<session>`,
    nothing else."""
    found = _ASSUMED_ROLE.fullmatch(caller_arn or "")
    return (found.group(1), found.group(2)) if found else None


class PrintReports:
    """`POST /v1/print-provider/letters/{letter_id}/status`: the print provider tells how it went."""

    def __init__(self, letters: PinLetters, workflow: LetterWorkflow, *, provider_role: str, account: str) -> None:
        """`provider_role`: the print provider's role, by its name, in this stack's `account` (a role of
        that name in another account is not it)."""
        self._letters = letters
        self._workflow = workflow
        self._provider = (account, provider_role)

    def report(self, letter_id: str, report: PrintReport, *, caller_arn: str | None) -> None:
        """Resume the letter's workflow. The same report again is accepted and changes nothing;
        a report that contradicts what is settled is a conflict. Only the print provider's role
        may report; to anyone else the letter does not exist."""
        if role_of(caller_arn) != self._provider:
            raise NotFound("There is no such letter at the print provider.")
        if self._settled_as(letter_id, report):
            return
        if self._workflow.resume(letter_id, report):
            self._letters.record_report(letter_id, report.status.value)
            return
        if self._settled_as(letter_id, report):
            return
        # This report may have resumed the workflow before, its record then failed (a 503 to the provider,
        # which makes it again): the workflow's history tells, and it is taken, recorded now.
        resumed = self._workflow.resumed_with(letter_id)
        if resumed is report.status:
            self._letters.record_report(letter_id, report.status.value)
            return
        # No report resumed the workflow, and it waits no longer: read once more. Another copy of this
        # report may have been recorded meanwhile (the history lags), or the hand-over ended unreported
        # and the letter is not posted, which a "failed" agrees with (`_settled_as`).
        if resumed is None and self._settled_as(letter_id, report, workflow_ended=True):
            return
        raise Conflict("The letter is no longer waiting for a report from the print provider.")

    def _settled_as(self, letter_id: str, report: PrintReport, *, workflow_ended: bool = False) -> bool:
        letter = self._letters.print_standing(letter_id)
        if letter is None or not letter.printed:
            raise NotFound("There is no such letter at the print provider.")
        if letter.dispatched_at is not None:
            if report.status is ReportedStatus.DISPATCHED:
                return True
            raise Conflict("The letter was reported posted already.")
        if letter.status is LetterStatus.FAILED:
            # the same report again (its answer lost): taken, also where the letter failed after it (a
            # "dispatched" whose activation failed for good)
            if report.status is ReportedStatus.FAILED or letter.reported == report.status.value:
                return True
            if letter.reported is None:  # a "dispatched" may have resumed it, its record then lost: the
                return False  # workflow's history tells (`report`)
            raise Conflict("The letter was reported failed already.")
        if letter.reported is not None:  # a report resumed its workflow, which has not settled the letter yet
            if letter.reported == report.status.value:
                return True
            raise Conflict(f"The letter was reported {letter.reported} already.")
        if not workflow_ended or report.status is not ReportedStatus.FAILED:
            return False
        # Blocked at the printer, then not posted in time (MarkFailed keeps it blocked): as a failed letter's.
        # Or still at the printer, its hand-over timed out: MarkFailed has yet to mark it failed (or is
        # retrying, for an hour or more under throttling, or gave up), and a "failed" agrees with what it
        # does; taken, as by a failed letter, so that the answer does not hang on MarkFailed's timing. Not so
        # for one whose message failed to send, which is handed over again (its provider's report then
        # wanted), nor for a history that shows no end (one lagging behind a report that resumed it, an
        # execution stopped).
        return letter.status is LetterStatus.BLOCKED or (
            letter.status is LetterStatus.PRINTING and self._workflow.timed_out(letter_id)
        )
