"""What the post, SMS and e-mail would have delivered: read from embedded AWS, shown at /_local/outbox.

SMS are what SNS (moto) was asked to publish to phone numbers; e-mails what SES (moto) was asked to
send. moto keeps no time for either, so the outbox timestamps each as moto stores it, and writes a
line to the console, as a phone or an inbox would show it arriving.
"""

from __future__ import annotations

import email
import email.policy
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from moto.ses.models import ses_backends
from moto.sns.models import sns_backends

from local.aws import ACCOUNT_ID, REGION

log = logging.getLogger("local.outbox")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class _TimestampedMessages(OrderedDict[str, tuple[str, str]]):
    """moto's record of SMS, with the time each was stored."""

    def __init__(self, on_store: Callable[[str, str], None]) -> None:
        super().__init__()
        self.sent_at: dict[str, str] = {}
        self._on_store = on_store

    def __setitem__(self, key: str, value: tuple[str, str]) -> None:
        self.sent_at.setdefault(key, _now())
        super().__setitem__(key, value)
        self._on_store(*value)


class _TimestampedList(list[Any]):
    """moto's record of e-mails, with the time each was stored."""

    def __init__(self, on_store: Callable[[Any], None]) -> None:
        super().__init__()
        self.sent_at: list[str] = []
        self._on_store = on_store

    def append(self, item: Any) -> None:
        self.sent_at.append(_now())
        super().append(item)
        self._on_store(item)


class Outbox:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._letters: dict[str, dict[str, Any]] = {}
        self._pdfs: dict[str, bytes] = {}
        sns = sns_backends[ACCOUNT_ID][REGION]
        ses = ses_backends[ACCOUNT_ID][REGION]
        self._sms = _TimestampedMessages(lambda to, message: log.info("SMS to %s: %s", to, message))
        self._sms.update(sns.sms_messages)
        sns.sms_messages = self._sms
        self._emails = _TimestampedList(lambda m: log.info("E-mail to %s: %s", _recipients(m), _subject(m)))
        self._emails.extend(ses.sent_messages)
        ses.sent_messages = self._emails

    def sms(self) -> list[dict[str, str]]:
        return [
            {"to": to, "message": message, "sent_at": self._sms.sent_at.get(message_id, "")}
            for message_id, (to, message) in list(self._sms.items())
        ]

    def emails(self) -> list[dict[str, str]]:
        emails = []
        for message, at in list(zip(self._emails, self._emails.sent_at, strict=False)):
            subject = _subject(message)
            if subject is not None:
                emails.append({"to": _recipients(message), "subject": subject, "body": _body(message), "sent_at": at})
        return emails

    def record_letter(self, letter_id: str, letter: dict[str, Any], pdf: bytes) -> None:
        with self._lock:
            self._letters[letter_id] = letter
            self._pdfs[letter_id] = pdf

    def pdf(self, letter_id: str) -> bytes | None:
        with self._lock:
            return self._pdfs.get(letter_id)

    def letters(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._letters.values())

    def snapshot(self) -> dict[str, Any]:
        return {"letters": self.letters(), "sms": self.sms(), "emails": self.emails()}


def _parsed(message: Any) -> email.message.EmailMessage | None:
    raw = getattr(message, "raw_data", None)
    if raw is None:
        return None
    parsed = email.message_from_string(raw, policy=email.policy.default)
    return parsed if isinstance(parsed, email.message.EmailMessage) else None


def _recipients(message: Any) -> str:
    destinations = getattr(message, "destinations", None)
    if isinstance(destinations, dict):
        return ", ".join(destinations.get("ToAddresses", []))
    if isinstance(destinations, list):
        return ", ".join(destinations)
    return ""


def _subject(message: Any) -> str | None:
    if hasattr(message, "subject"):
        return str(message.subject)
    parsed = _parsed(message)
    return str(parsed["subject"]) if parsed is not None else None


def _body(message: Any) -> str:
    if hasattr(message, "body"):
        return str(message.body)
    parsed = _parsed(message)
    if parsed is None:
        return ""
    part = parsed.get_body(preferencelist=("plain", "html"))
    return str(part.get_content()) if part is not None else ""
