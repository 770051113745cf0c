"""One-time codes sent by SMS or e-mail (login, enrolment, contact changes, password resets)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from minid.domain.contacts import Language
from minid.domain.errors import DomainError
from minid.domain.notices import Message
from minid.domain.random import RandomSource
from minid.values import Value

CODE_DIGITS = 6
CODE_LIFETIME = timedelta(minutes=10)
MAX_CODE_TRIES = 3


def new_code(random: RandomSource) -> str:
    return f"{random.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


@contextmanager
def try_given_back_on_failure(give_back: Callable[[], None]) -> Iterator[None]:
    """Around what follows a try counted before its codes were judged (or once they were judged
    right): if it fails (AWS briefly down, a weak password, a send refused), the try is given back.
    The citizen tried nothing wrong, and must not run out of tries while the service is down."""
    try:
        yield
    except Exception as error:
        try:
            give_back()
        except Exception as failed:  # the answer stays the original error's (a 422 stays a 422)
            error.add_note(f"The try was not given back: {type(failed).__name__}")
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

    def check(self, resends: int, last_sent_at: datetime, now: datetime) -> None:
        if resends >= self.max_resends:
            raise RateLimited(int(CODE_LIFETIME.total_seconds()), "No more codes can be sent. Start again later.")
        wait = last_sent_at + self.interval - now
        if wait > timedelta(0):
            raise RateLimited(int(wait.total_seconds()) + 1, "A new code was just sent. Wait a little first.")


def code_message(
    code: str, language: Language, public_domain: str, *, instead_of_sms: bool = False, minutes: int | None = None
) -> Message:
    """The code by SMS (ending with the WebOTP line, so that browsers can fill it in) or e-mail. By e-mail
    `instead_of_sms` (the mobile refused by the SMS provider), the e-mail says why it did not come by SMS.
    `minutes`: how long it still works (a code sent late, from a queue), if not its whole lifetime."""
    minutes = int(CODE_LIFETIME.total_seconds() // 60) if minutes is None else max(minutes, 1)
    one = minutes == 1
    if language is Language.ENGLISH:
        valid = f"{minutes} minute" if one else f"{minutes} minutes"
        line = f"Your MinID code is {code}. It is valid for {valid}. Never give it to anyone."
        why = "It could not be sent by SMS to your mobile number, so it comes by e-mail."
        subject = "MinID: your code"
    elif language is Language.NYNORSK:  # koden is masculine: han; minutt, in the plural too
        line = f"Koden din for MinID er {code}. Han gjeld i {minutes} minutt. Ikkje gi han til nokon."
        why = "Han kunne ikkje sendast på SMS til mobilnummeret ditt, så han kjem på e-post."
        subject = "MinID: koden din"
    else:
        valid = f"{minutes} minutt" if one else f"{minutes} minutter"
        line = f"Koden din for MinID er {code}. Den gjelder i {valid}. Ikke gi den til noen."
        why = "Den kunne ikke sendes på SMS til mobilnummeret ditt, så den kommer på e-post."
        subject = "MinID: koden din"
    paragraphs = [line, why] if instead_of_sms else [line]
    return Message(
        sms=f"{line}\n\n@{public_domain} #{code}",
        subject=subject,
        text="\n\n".join(paragraphs) + "\n\nMinID\n",
        html=f'<!doctype html><html lang="{language.value}"><head><meta charset="utf-8"><title>{subject}</title>'
        f"</head><body>{''.join(f'<p>{p}</p>' for p in paragraphs)}<p>MinID</p></body></html>",
    )
