"""One-time codes sent by SMS or e-mail (login, enrolment, contact changes, password resets)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timedelta
from enum import StrEnum

from minid.domain.contacts import Language
from minid.domain.errors import Conflict, DomainError
from minid.domain.notices import CODE_USABLE_FOR, Channel, Message
from minid.domain.random import RandomSource
from minid.values import Value

CODE_DIGITS = 6
CODE_LIFETIME = timedelta(minutes=10)
MAX_CODE_TRIES = 3


# The hashes of replaced codes a challenge keeps (the newest): a resend, a completion made again or a change
# made again replaces its codes, and the first SMS or e-mail may come late, or after the second (their
# order is not kept), so a person may well type a code just replaced. Such a code is told so, and is no
# guess: no try is spent on it. (It cannot log in or verify anything.)
REPLACED_KEPT = 8

# How finely a time is stored (adapters.dynamodb.iso: to the millisecond, the rest cut off): a time read
# back is the time written, less under this.
STORED_TO = timedelta(milliseconds=1)


def new_code(random: RandomSource) -> str:
    return f"{random.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def kept_replaced(kept: Iterable[str], replaced: Iterable[str]) -> tuple[str, ...]:
    """The replaced codes' hashes a challenge keeps once `replaced` are too: the newest `REPLACED_KEPT`."""
    return (*kept, *replaced)[-REPLACED_KEPT:]


_SENT_BY = {Channel.SMS: "SMS", Channel.EMAIL: "e-mail"}


def written_by_this_resend(
    now_as: tuple[int, datetime | None, Mapping[Channel, str]], written: tuple[int, datetime, Mapping[Channel, str]]
) -> bool:
    """Whether a resend whose conditional write was refused finds its own write, made and its answer lost
    (a retry of the write, the SDK's, then found it made: a plain update's anywhere; a transaction's on moto,
    or past its request token's ten minutes on DynamoDB): the count, the codes' time and the codes it wrote,
    each (count, sent at, code hashes). The time is compared as stored (to the millisecond): another request
    that drew the same codes (one in a million a channel) at the same count is told apart by it, unless it
    wrote in the same millisecond."""
    count_now, sent_now, hashes_now = now_as
    count, sent_at, hashes = written
    return (
        bool(hashes)
        and count_now == count
        and sent_now is not None
        and timedelta(0) <= sent_at - sent_now < STORED_TO
        and all(hashes_now.get(channel) == digest for channel, digest in hashes.items())
    )


def replaced_code(channels: Collection[Channel]) -> str:
    """What a code replaced by a newer one is told (a code of each of `channels` given, each replaced)."""
    where = " and the last ".join(_SENT_BY[channel] for channel in Channel if channel in channels)
    if len(channels) > 1:
        return f"Those codes were replaced by newer ones. Use the codes in the last {where}, or ask for new ones."
    return f"That code was replaced by a newer one. Use the code in the last {where}, or ask for a new one."


def try_given_back_on_failure(give_back: Callable[[], None]) -> AbstractContextManager[None]:
    """Around what follows a try counted before its codes were judged (or once they were judged
    right): if it fails (AWS briefly down, a weak password, a send refused), the try is given back.
    The citizen tried nothing wrong, and must not run out of tries while the service is down."""
    return _given_back_on_failure(give_back, "The try was not given back")


def codes_given_back_on_failure(give_back: Callable[[], None]) -> AbstractContextManager[None]:
    """Around the write of a resend's codes, and around their sending: the write failing for other than
    its condition (its answer lost, and the SDK's retry refused as time ran out, say) may have landed, and
    a send failing leaves them written, codes that will never be sent in place of the ones the person
    holds: those are given back (`give_back`, held on this resend's own write; after a send, those not
    sent). The block's own error is the one raised (a number refused for good stays a 422)."""
    return _given_back_on_failure(give_back, "A resend's codes were not given back")


def counts_given_back_unless_sent(
    give_back: Callable[[], None], sent: Collection[object]
) -> AbstractContextManager[None]:
    """Around the sending of codes counted beforehand against the limits of codes sent (the person's ten
    an hour, the client's): if it fails with none sent (`sent`: the channels the codes went to, or may
    have), the counts are given back. A short outage of the provider must not use the limits up, and
    shut the person out for the hour. Codes that went out, or may have, stay counted."""

    def unless_sent() -> None:
        if not sent:
            give_back()

    return _given_back_on_failure(unless_sent, "The counts were not given back")


@contextmanager
def _given_back_on_failure(give_back: Callable[[], None], not_given_back: str) -> Iterator[None]:
    """The block's failure gives back what was counted before it (`give_back`), and is raised as it was:
    a give-back that fails too is told in a note of it (a 422 stays a 422)."""
    try:
        yield
    except Exception as error:
        try:
            give_back()
        except Exception as failed:
            error.add_note(f"{not_given_back}: {type(failed).__name__}")
        raise


class RateLimited(DomainError):
    detail = "Too many requests. Please wait before trying again."

    def __init__(self, retry_after: int, detail: str | None = None) -> None:
        super().__init__(detail)
        self.retry_after = max(1, retry_after)


class ResendPolicy(Value, frozen=True):
    """At most 3 resends, 30 seconds apart. A resend never gives back a try."""

    max_resends: int = 3
    interval: timedelta = timedelta(seconds=30)

    def check(self, resends: int, last_sent_at: datetime, now: datetime, ends_at: datetime | None = None) -> None:
        """`ends_at`: when what the code is for ends (a login, an enrolment, a change): with less than
        CODE_USABLE_FOR left, no code is sent (it would say "valid for 1 minute" and expire on the way)."""
        if resends >= self.max_resends:  # for good: no wait makes another possible (a 409, no Retry-After)
            raise Conflict("No more codes can be sent for this one. Start again to get a new code.")
        if ends_at is not None and ends_at - now < CODE_USABLE_FOR:
            raise Conflict("Too little time is left to use a new code. Start again to get a new code.")
        wait = last_sent_at + self.interval - now
        if wait > timedelta(0):
            raise RateLimited(int(wait.total_seconds()) + 1, "A new code was just sent. Wait a little first.")


class CodePurpose(StrEnum):
    """What a code is for: its message says so, and what to do if it was not the person who asked."""

    LOGIN = "login"
    ENROLMENT = "enrolment"
    CONTACT = "contact"
    RESET = "reset"


# (language, purpose) -> the first sentence up to the code, what to do if it was not you, the e-mail's subject
_PURPOSES: dict[tuple[Language, CodePurpose], tuple[str, str, str]] = {
    (Language.ENGLISH, CodePurpose.LOGIN): (
        "Your code to log in to MinID is",
        "Not you? Change your password.",
        "MinID: your code to log in",
    ),
    (Language.ENGLISH, CodePurpose.ENROLMENT): (
        "Your code to become a MinID user is",
        "Not you? Ignore this message.",
        "MinID: your code to become a user",
    ),
    (Language.ENGLISH, CodePurpose.CONTACT): (
        "Your code for a contact change in MinID is",
        "Not you? Ignore it.",
        "MinID: your code to confirm a change",
    ),
    (Language.ENGLISH, CodePurpose.RESET): (
        "Your code to reset your MinID password is",
        "Not you? Ignore it.",
        "MinID: your code for a new password",
    ),
    (Language.BOKMAL, CodePurpose.LOGIN): (
        "Koden din for å logge inn i MinID er",
        "Ikke deg? Bytt passordet ditt.",
        "MinID: koden din for å logge inn",
    ),
    (Language.BOKMAL, CodePurpose.ENROLMENT): (
        "Koden din for å bli MinID-bruker er",
        "Ikke deg? Se bort fra meldingen.",
        "MinID: koden din for å bli bruker",
    ),
    (Language.BOKMAL, CodePurpose.CONTACT): (
        "Koden din for en endring i MinID er",
        "Ikke deg? Se bort fra den.",
        "MinID: koden din for å bekrefte en endring",
    ),
    (Language.BOKMAL, CodePurpose.RESET): (
        "Koden din for nytt passord i MinID er",
        "Ikke deg? Se bort fra den.",
        "MinID: koden din for nytt passord",
    ),
    (Language.NYNORSK, CodePurpose.LOGIN): (
        "Koden din for å logge inn i MinID er",
        "Ikkje deg? Byt passordet ditt.",
        "MinID: koden din for å logge inn",
    ),
    (Language.NYNORSK, CodePurpose.ENROLMENT): (
        "Koden din for å bli MinID-brukar er",
        "Ikkje deg? Sjå bort frå meldinga.",
        "MinID: koden din for å bli brukar",
    ),
    (Language.NYNORSK, CodePurpose.CONTACT): (
        "Koden din for ei endring i MinID er",
        "Ikkje deg? Sjå bort frå han.",
        "MinID: koden din for å stadfeste ei endring",
    ),
    (Language.NYNORSK, CodePurpose.RESET): (
        "Koden din for nytt passord i MinID er",
        "Ikkje deg? Sjå bort frå han.",
        "MinID: koden din for nytt passord",
    ),
}


def minutes_left(expires_at: datetime, now: datetime) -> int:
    """The whole minutes a code sent now works: its lifetime, or less when what it is for ends sooner
    (a login's or an enrolment's time runs from its start, not from a code sent again)."""
    return int(min(CODE_LIFETIME, expires_at - now).total_seconds() // 60)


def code_message(
    code: str,
    language: Language,
    public_domain: str,
    purpose: CodePurpose,
    *,
    instead_of_sms: bool = False,
    minutes: int | None = None,
) -> Message:
    """The code by SMS (ending with the WebOTP line, so that browsers can fill it in) or e-mail, saying
    what it is for and what to do if the person did not ask for it (one GSM-7 segment: a test holds it).
    By e-mail `instead_of_sms` (the mobile refused by the SMS provider, or given up on as it kept failing),
    the e-mail says why it did not come by SMS. `minutes`: how long it still works (`minutes_left`; a code
    sent late, from a queue), if not its whole lifetime (at least 1: a code is sent only while it works)."""
    minutes = int(CODE_LIFETIME.total_seconds() // 60) if minutes is None else max(minutes, 1)
    one = minutes == 1
    what, not_you, subject = _PURPOSES[(language, purpose)]
    if language is Language.ENGLISH:
        valid = f"{minutes} minute" if one else f"{minutes} minutes"
        line = f"{what} {code}. It is valid for {valid}. Never give it to anyone. {not_you}"
        why = "It could not be sent by SMS to your mobile number, so it comes by e-mail."
    elif language is Language.NYNORSK:  # koden is masculine: han; minutt, in the plural too
        line = f"{what} {code}. Han gjeld i {minutes} minutt. Ikkje gi han til nokon. {not_you}"
        why = "Han kunne ikkje sendast på SMS til mobilnummeret ditt, så han kjem på e-post."
    else:
        valid = f"{minutes} minutt" if one else f"{minutes} minutter"
        line = f"{what} {code}. Den gjelder i {valid}. Ikke gi den til noen. {not_you}"
        why = "Den kunne ikke sendes på SMS til mobilnummeret ditt, så den kommer på e-post."
    paragraphs = [line, why] if instead_of_sms else [line]
    return Message(
        sms=f"{line}\n\n@{public_domain} #{code}",
        subject=subject,
        text="\n\n".join(paragraphs) + "\n\nMinID\n",
        html=f'<!doctype html><html lang="{language.value}"><head><meta charset="utf-8"><title>{subject}</title>'
        f"</head><body>{''.join(f'<p>{p}</p>' for p in paragraphs)}<p>MinID</p></body></html>",
    )
