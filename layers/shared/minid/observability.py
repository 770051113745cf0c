"""The functions' logger and metrics: Powertools structured logs that cannot carry personal data, and
CloudWatch metrics (embedded metric format, written with the logs) whose names and dimensions are
the code's own: a route, a status, a channel, never a value from a request.

No log call in this code base passes a secret or personal data; the formatter is the net under that
rule, for what a message or an exception could drag in (a library's error quoting its input). It masks,
in every value and key but the keys Powertools sets about the function and the request: fields named for
personal data or secrets, whatever they hold, and in free text, what has the shape of an identity
number, a phone number, an e-mail address, a date on its own, a one-time or PIN code, a token or a TOTP
secret. (A name in free text has no shape to find: no log call passes one, and the register's errors
name fields, not values.)

(Powertools' data masking utility erases fields by JSONPath and needs jsonpath-ng; the masking here is
by key and by pattern, since what must be caught is free text, and adds no dependency.)
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.logging.types import LogRecord
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

# What Powertools writes about the function and the request: names, ids and times, never a person's.
CONTEXT_KEYS = frozenset(
    {
        "level",
        "location",
        "timestamp",
        "service",
        "cold_start",
        "function_name",
        "function_memory_size",
        "function_arn",
        "function_request_id",
        "correlation_id",
        "xray_trace_id",
        "sampling_rate",
    }
)
# Fields masked whatever they hold.
SECRET_KEYS = frozenset(
    {
        "identity_number",
        "password",
        "current_password",
        "new_password",
        "code",
        "pin_code",
        "pin_codes",
        "mobile_code",
        "email_code",
        "mobile",
        "email",
        "phone",
        "to",
        "access_token",
        "token",
        "authorization",
        "secret",
        "otpauth_uri",
        "totp_secret",
        "pepper",
        "pin",
        "cookie",
        # the client's address (what Powertools' event logging, turned on, would write of the request)
        "sourceip",
        "x-forwarded-for",
        "address",
        "name",
        # the population register's fields (`domain.population`): no shape in free text tells a name or a
        # street, so their names are the only net for them
        "given_name",
        "family_name",
        "birth_date",
        "street",
        "postal_code",
        "city",
        "care_of",
        "address_abroad",
        "lines_abroad",
        "address_protection",  # that a person is under threat
        # what holds contacts
        "recipients",
        "contacts",
        "phone_number",
    }
)
MASK = "***"
NAMESPACE = "MinID"  # the metrics' namespace where POWERTOOLS_METRICS_NAMESPACE does not name one
# In free text, longest shapes first (a token before the digits inside it).
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\bbearer\s+\S+"), "Bearer [token]"),
    (re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{40,}(?![A-Za-z0-9_-])"), "[token]"),
    (re.compile(r"(?<![A-Z2-7])[A-Z2-7]{32}(?![A-Z2-7])"), "[secret]"),
    # begun only where an address can begin (after none of its own characters): tried from every character of
    # a long run without an @, each scan to the run's end would make it quadratic (8 KiB of "a." took 0.25 s).
    # An apostrophe is one of its own before the @ (kari.o'neil@...), as addresses are taken, and not
    # after it. A quote before the address ('kari@...') is kept, and so is a name it is given before a
    # quote or a bracket (to='kari@...'; not kari=nordmann@..., an address of its own). Then again with
    # the apostrophe as a start (each pass linear): an address right after another's closing quote
    # ('a@x.no'&'b@y.no')
    (
        re.compile(
            r"(?<![^\s@\"<>(),;:])((?:[A-Za-z_]\w*=(?:\[?'|\[))?'?)[^\s@\"<>(),;:]+@[^\s@\"'<>(),;:]+\.[^\s@\"'<>(),;:]{2,}"
        ),
        r"\1[e-mail]",
    ),
    (re.compile(r"(?<![^\s@\"'<>(),;:])[^\s@\"'<>(),;:]+@[^\s@\"'<>(),;:]+\.[^\s@\"'<>(),;:]{2,}"), "[e-mail]"),
    # international, with + or 00, the digits grouped by spaces, dots or hyphens as people write them (from
    # seven digits: a mobile of some numbering plans is as short, +690 7290)
    (re.compile(r"(?<![\d+])(?:\+|00)\d(?:[ .-]?\d){6,16}(?!\d)"), "[phone]"),
    (re.compile(r"(?<!\d)\d{6}[ -]?\d{5}(?!\d)"), "[identity number]"),  # its birth date set apart, too
    # a date on its own (a birth date, a day of death: a register's, quoted by a parser's error), as ISO,
    # Norwegian or compact; a time of day with it is a moment of the system's, and stays readable
    (re.compile(r"(?<![\d-])\d{4}-\d{1,2}-\d{1,2}(?![\d:T-])(?! \d{1,2}:)"), "[date]"),
    (re.compile(r"(?<![\d.])\d{1,2}\.\d{1,2}\.\d{4}(?!\.?\d)"), "[date]"),
    (re.compile(r"(?<!\d)(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])(?!\d)"), "[date]"),
    (re.compile(r"(?<!\d)47[49]\d{7}(?!\d)"), "[phone]"),  # E.164 without its +
    (re.compile(r"(?<!\d)[49]\d(?:[ .-]?\d){6}(?!\d)"), "[phone]"),  # a Norwegian mobile: 912 34 567
    (re.compile(r"(?<!\d)\d{6}(?!\d)"), "[code]"),
)


# Ids (a letter's, a request's) are no one's personal data, and their digits could take the shape of a
# code or a phone number: set aside while the patterns run, and put back.
_UUID = re.compile(r"(?i)(?<![0-9a-f-])[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?![0-9a-f-])")
_SET_ASIDE = "\x00"


def redact(text: str) -> str:
    text = text.replace(_SET_ASIDE, "")
    ids = _UUID.findall(text)
    numbered = iter(range(len(ids)))
    # each set aside by its number: one a pattern takes in (an address ending in it, say) goes with it,
    # and every other comes back where it was, not shifted onto another's place
    text = _UUID.sub(lambda _: f"{_SET_ASIDE}{next(numbered)}{_SET_ASIDE}", text)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return re.sub(f"{_SET_ASIDE}(\\d+){_SET_ASIDE}", lambda found: ids[int(found.group(1))], text)


def _masked(key: str, value: Any) -> Any:
    if key.lower() in SECRET_KEYS and value is not None:
        return MASK
    if isinstance(value, dict):
        return _masked_entries(value)
    if isinstance(value, list | tuple):
        return [_masked(key, v) for v in value]
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int):  # a count as it is; an identity number or a mobile's given as a number masked
        masked = redact(str(value))
        return masked if masked in _WHOLE_NUMBERS_MASKED else value
    return redact(str(value))  # text, and what would be written as text (an exception, a date)


# What a number is masked as where it is one of these whole: not a count of six digits (a code's shape) or
# eight (a compact date's), which a count of reminders a day may be
_WHOLE_NUMBERS_MASKED = frozenset({"[identity number]", "[phone]"})


def _masked_entries(entries: Mapping[Any, Any], kept: frozenset[str] = frozenset()) -> dict[str, Any]:
    """A dict's entries masked, its keys too (a dict keyed by an identity number or an address), but those
    `kept` as they are. Two keys masked alike (two addresses) are both kept: the second and later numbered."""
    masked: dict[str, Any] = {}
    for k, v in entries.items():
        if k in kept:
            masked[k] = v
            continue
        key = redact(str(k))
        masked[key if key not in masked else f"{key} {len(masked)}"] = _masked(str(k), v)
    return masked


class MaskingFormatter(LambdaPowertoolsFormatter):
    def serialize(self, log: LogRecord) -> str:
        return super().serialize(_masked_entries(dict(log), kept=CONTEXT_KEYS))


# Libraries whose debug logs hold what is sent and received in full (botocore's "Making request ... with
# params" and "Response body": a phone number and its code, a contact record, the pepper as Secrets Manager
# answers it): they log through the runtime's root handler, not this formatter, so a function's log level
# turned to DEBUG (the console's one setting, in an incident) must not reach them.
QUIET_LIBRARIES = ("botocore", "boto3", "urllib3", "s3transfer", "aws_lambda_powertools")


def logger() -> Logger:
    """The function's logger (children, `Logger(child=True)`, write through it)."""
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
    # Powertools keeps the logger's records from the runtime's root handler, which does not mask, by a filter
    # that this setting leaves out (to have the records twice): no setting may send them past the masking
    os.environ.pop("POWERTOOLS_LOG_DEDUPLICATION_DISABLED", None)
    return Logger(logger_formatter=MaskingFormatter())


def count(metric: str, **dimensions: str) -> None:
    """One occurrence of `metric`, written now. EphemeralMetrics keeps no state between calls (the
    shared `Metrics` would mix the dimensions of requests that overlap in one process, as locally)."""
    metrics = EphemeralMetrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or NAMESPACE)
    for name, value in dimensions.items():
        metrics.add_dimension(name=name, value=value)
    metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)
    # written as flush_metrics would, but whatever POWERTOOLS_DEV says (Powertools' switch for verbose
    # output, which an operator may set in an incident, turns metrics off): the alarms stand on these
    print(json.dumps(metrics.serialize_metric_set(), separators=(",", ":")))


def undone(error: BaseException) -> dict[str, list[str]]:
    """What a failure left undone, as the notes the code adds to it say (a count not given back, a login not
    ended, a claim not released), for a log's `extra`; empty when it left nothing. The notes are the code's
    own words and error types' names; masked all the same, as every log is."""
    notes = getattr(error, "__notes__", None)
    return {"undone": [str(note) for note in notes]} if notes else {}
