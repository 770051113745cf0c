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


def code_message(code: str, language: Language, public_domain: str) -> Message:
    """The code by SMS (ending with the WebOTP line, so that browsers can fill it in) or e-mail."""
    minutes = int(CODE_LIFETIME.total_seconds() // 60)
    if language is Language.ENGLISH:
        line = f"Your MinID code is {code}. It is valid for {minutes} minutes. Never give it to anyone."
        subject = "MinID: your code"
    elif language is Language.NYNORSK:  # koden is masculine: han
        line = f"Koden din for MinID er {code}. Han gjeld i {minutes} minutt. Ikkje gi han til nokon."
        subject = "MinID: koden din"
    else:
        line = f"Koden din for MinID er {code}. Den gjelder i {minutes} minutter. Ikke gi den til noen."
        subject = "MinID: koden din"
    return Message(
        sms=f"{line}\n\n@{public_domain} #{code}",
        subject=subject,
        text=f"{line}\n\nMinID\n",
        html=f'<!doctype html><html lang="{language.value}"><head><meta charset="utf-8"><title>{subject}</title>'
        f"</head><body><p>{line}</p><p>MinID</p></body></html>",
    )
