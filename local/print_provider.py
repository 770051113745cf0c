"""A simulated print provider, as a real one works against MinID's AWS account.

It takes jobs from its inbox (the print queue): sends a heartbeat to the waiting workflow with the job's
task token (a job no workflow waits for any more is dropped, as is a second job for a letter already
taken), fetches the PDF and manifest from S3, reads what the envelope window and the page show
(pypdf), and takes the job: deletes its message from the inbox, the job now its own (a message not
taken within the queue's visibility timeout is handed out again). It "posts" the letter after a delay,
and reports it through the IAM-authorised callback route, trying again until the report is taken.
What it posted goes to the outbox with the address, the codes and the status.
"""

from __future__ import annotations

import io
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.exceptions import ClientError
from pypdf import PdfReader

from local.event_sources import Poller
from local.gateway import Gateway, HttpRequest, HttpResponse
from local.outbox import Outbox
from minid.adapters.print_documents import (
    WINDOW_HEIGHT,
    WINDOW_LEFT,
    WINDOW_TOP,
    WINDOW_WIDTH,
)

log = logging.getLogger("local.print_provider")
REPORT_BACKOFF_SECONDS = 0.5  # a report answered 5xx: tried again after 0.5, 1, 2, ... s
REPORT_BACKOFF_MAX_SECONDS = 30.0
# A heartbeat's answer when no workflow waits on the job's token any more (the letter failed or timed out, or
# the hand-over was tried again and this is the first try's job): AWS answers TaskTimedOut, moto InvalidToken.
NO_LONGER_WAITED_FOR = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})
TOKEN_CHECKS, TOKEN_CHECK_PAUSE_SECONDS = 6, 0.2
ACCESS_KEY_ID = "LOCALPRINTPROVIDER"  # the gateway knows this signer as the print provider's role
_POINTS_PER_MM = 72 / 25.4
_A4_HEIGHT_MM = 297.0


@dataclass(frozen=True, slots=True)
class PrintedPage:
    """What can be read off a printed letter."""

    window: tuple[str, ...]  # the lines in the envelope window, the return line first
    codes: dict[str, str]  # "1" -> "123456", as numbered on the page

    @property
    def recipient(self) -> str:
        return self.window[1] if len(self.window) > 1 else ""

    @property
    def address(self) -> tuple[str, ...]:
        return self.window[2:]


def read_printed_letter(pdf: bytes) -> PrintedPage:
    """Read the window lines and the numbered codes off the letter's first page."""
    pieces: list[tuple[float, float, str]] = []  # (x, y) in millimetres from the top left, text

    def visit(text: str, cm: Any, tm: Any, font: Any, size: Any) -> None:
        if text.strip():
            x = (tm[4] * cm[0] + cm[4]) / _POINTS_PER_MM
            y = _A4_HEIGHT_MM - (tm[5] * cm[3] + cm[5]) / _POINTS_PER_MM
            pieces.append((x, y, text.strip()))

    PdfReader(io.BytesIO(pdf)).pages[0].extract_text(visitor_text=visit)
    window = tuple(
        text
        for x, y, text in sorted(pieces, key=lambda p: (p[1], p[0]))
        if WINDOW_LEFT - 1 <= x <= WINDOW_LEFT + WINDOW_WIDTH and WINDOW_TOP <= y <= WINDOW_TOP + WINDOW_HEIGHT
    )
    numbers = [(x, round(y), m.group(1)) for x, y, text in pieces if (m := re.fullmatch(r"(\d{1,2})\.", text))]
    codes: dict[str, str] = {}
    for x, y, text in pieces:
        if re.fullmatch(r"\d{6}", text):
            left = [(nx, n) for nx, ny, n in numbers if ny == round(y) and nx < x]
            if left:
                codes[max(left)[1]] = text
    return PrintedPage(window, dict(sorted(codes.items(), key=lambda item: int(item[0]))))


class PrintProviderSimulator(Poller):
    def __init__(
        self,
        session: boto3.Session,
        queue_url: str,
        gateway: Gateway,
        outbox: Outbox,
        *,
        delay_seconds: float,
        identity_of: Callable[[str], str | None],
    ) -> None:
        self._sqs = session.client("sqs")
        self._s3 = session.client("s3")
        self._stepfunctions = session.client("stepfunctions")
        self._queue_url = queue_url
        self._gateway = gateway
        self._outbox = outbox
        self._delay = delay_seconds
        self._identity_of = identity_of
        super().__init__("print-provider", "the print inbox")
        self._taking = threading.Lock()
        self._taken: set[str] = set()  # the letters whose job was taken, as a provider knows its jobs by letter

    def poll_once(self) -> int:
        """Each job of the inbox printed on a thread of its own (a provider prints many at once)."""
        messages = self._sqs.receive_message(QueueUrl=self._queue_url, MaxNumberOfMessages=10).get("Messages", [])
        for message in messages:
            threading.Thread(target=self._print, args=(message,), daemon=True).start()
        return len(messages)

    def _still_waited_for(self, task_token: str) -> bool:
        """A heartbeat made, or False if no workflow waits on the token. A token only just handed over may
        not be known yet (moto's executor records it as its message goes): asked again for a second first."""
        for attempt in range(TOKEN_CHECKS):
            try:
                self._stepfunctions.send_task_heartbeat(taskToken=task_token)
                return True
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") not in NO_LONGER_WAITED_FOR:
                    raise
            if attempt < TOKEN_CHECKS - 1:
                self._stopped.wait(TOKEN_CHECK_PAUSE_SECONDS)
        return False

    def _drop(self, message: dict[str, Any]) -> None:
        self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])

    def _untake(self, letter_id: str) -> None:
        with self._taking:
            self._taken.discard(letter_id)

    def _report(self, letter_id: str) -> HttpResponse | None:
        """The letter reported dispatched; an answer of 5xx is tried again, until the report is taken or
        the simulator stops (None): the job is the provider's, and no one else will report it."""
        attempt = 0
        while not self._stopped.is_set():
            response = self._gateway.handle(
                HttpRequest(
                    "POST",
                    f"/v1/print-provider/letters/{letter_id}/status",
                    [
                        ("Content-Type", "application/json"),
                        ("Authorization", f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/local/print"),
                    ],
                    json.dumps({"status": "dispatched"}).encode(),
                )
            )
            if response.status < 500:
                return response
            log.warning("the report of letter %s was answered %s", letter_id, response.status)
            self._stopped.wait(min(REPORT_BACKOFF_SECONDS * 2**attempt, REPORT_BACKOFF_MAX_SECONDS))
            attempt += 1
        return None

    def _print(self, message: dict[str, Any]) -> None:
        job = json.loads(message["Body"])
        letter_id = job["letter_id"]
        try:
            # first, whether the workflow still waits for it: a letter that failed or timed out meanwhile, or
            # the job of a hand-over tried twice (the first try's, whose token is dead), is not printed (its
            # document may be gone already)
            waited_for = self._still_waited_for(job["task_token"])
        except ClientError:
            log.exception("letter %s could not be taken", letter_id)
            return  # the job stays in the inbox and comes back after the visibility timeout
        if not waited_for:
            log.warning("letter %s: its workflow no longer waits for it: the job is dropped", letter_id)
            self._drop(message)
            return
        with self._taking:  # only now: a dead job for a letter must not keep its live job from being taken
            taken_before = letter_id in self._taken
            self._taken.add(letter_id)
        if taken_before:  # a job handed out twice (SQS delivers at least once): one letter, not two
            log.warning("letter %s was taken already: the job is dropped", letter_id)
            self._drop(message)
            return
        try:
            pdf = self._s3.get_object(Bucket=job["bucket"], Key=job["pdf"])["Body"].read()
            manifest = json.loads(self._s3.get_object(Bucket=job["bucket"], Key=job["manifest"])["Body"].read())
            page = read_printed_letter(pdf)
        except Exception:
            self._untake(letter_id)
            log.exception("letter %s could not be taken", letter_id)
            return  # the job stays in the inbox and comes back after the visibility timeout
        # taken: the job is the provider's now, however long its printing takes
        self._drop(message)
        if self._delay:
            time.sleep(self._delay)
        response = self._report(letter_id)
        if response is None:
            log.warning("letter %s was posted and not reported: the simulator stopped", letter_id)
            return
        status = "dispatched" if response.status == 204 else f"report refused ({response.status})"
        self._outbox.record_letter(
            letter_id,
            {
                "letter_id": letter_id,
                "identity_number": self._identity_of(letter_id),
                "name": page.recipient,
                "address": list(page.address),
                "pin_codes": page.codes,
                "status": status,
                "posted_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "manifest": manifest,
                "pdf": f"/_local/outbox/letters/{letter_id}.pdf",
            },
            pdf,
        )
        log.info("Letter %s posted to %s (%s)", letter_id, ", ".join(page.address[-2:]), status)
