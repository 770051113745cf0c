"""Bad input on every route, table-driven: each is refused with a clear problem (never a 5xx), and
nothing is written (no item, no message, no SMS or e-mail, no workflow).

The table: for every route with a body, malformed and non-UTF-8 JSON, the wrong media type, a body over
16 KiB, deep nesting, a body that is not an object, an unknown field, each required field missing, each
field of the wrong type, empty, huge, or holding control characters and odd Unicode; identity numbers
of every wrong kind; phone numbers and e-mail addresses that are not; path ids that are malformed, that
do not exist, or that belong to another person's login.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pytest

from local.gateway import HttpRequest, HttpResponse
from local.print_provider import ACCESS_KEY_ID
from minid.domain.identity import RULE_2032_FROM, compose_identity_number
from tests.integration.conftest import local_driver
from tests.integration.letters import QUEUE_COUNTS, LetterDriver
from tests.integration.users import User, enrolled

TODAY = date.today()
SIGNED = f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/20261122/eu-north-1/execute-api/aws4_request"
UNCHANGED_TABLES = ("PopulationRegisterTable",)  # read, never written
TOUCHED = "last_seen_at"  # a session's last use, which a request with its token may write


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    body: dict[str, Any] | None = None  # a valid body
    auth: str = ""  # "bearer", "sigv4" or none
    kinds: dict[str, str] = field(default_factory=dict)  # field -> what it holds
    required: tuple[str, ...] = ()
    nullable: tuple[str, ...] = ()
    one_of: tuple[str, ...] = ()  # fields of which one at least must be given
    unknown_id: tuple[int, ...] = (404,)  # what a well-formed id that does not exist gets

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"


ID = "{id}"
ROUTES = [
    Route(
        "POST",
        "/v1/pin-letters",
        {"identity_number": "?"},
        kinds={"identity_number": "identity"},
        required=("identity_number",),
    ),
    Route(
        "POST",
        "/v1/enrolments",
        {"identity_number": "?"},
        kinds={"identity_number": "identity"},
        required=("identity_number",),
    ),
    Route(
        "POST",
        f"/v1/enrolments/{ID}/complete",
        {"pin_codes": {"3": "123456", "7": "654321"}, "password": "fjelltur i tåke og regn", "mobile": "91234567"},
        kinds={
            "pin_codes": "pin_codes",
            "password": "new-password",
            "mobile": "phone",
            "email": "email",
            "language": "language",
        },
        required=("pin_codes", "password"),
        nullable=("mobile", "email", "language"),  # no language: the letter's
    ),
    Route("POST", f"/v1/enrolments/{ID}/resend"),
    Route(
        "POST",
        f"/v1/enrolments/{ID}/verify",
        {"mobile_code": "123456"},
        kinds={"mobile_code": "code", "email_code": "code"},
        nullable=("mobile_code", "email_code"),
        one_of=("mobile_code", "email_code"),
    ),
    Route(
        "POST",
        "/v1/login",
        {"identity_number": "?", "password": "fjelltur i tåke og regn", "second_factor": "sms"},
        kinds={"identity_number": "identity", "password": "password", "second_factor": "factor"},
        required=("identity_number", "password"),
        nullable=("second_factor",),
    ),
    Route(
        "POST",
        f"/v1/login/{ID}/verify",
        {"code": "123456"},
        kinds={"code": "code"},
        required=("code",),
        unknown_id=(401,),
    ),
    Route("POST", f"/v1/login/{ID}/resend", unknown_id=(401,)),
    Route("POST", "/v1/logout", auth="bearer"),
    Route("GET", "/v1/me", auth="bearer"),
    Route("GET", "/v1/me/events", auth="bearer"),
    Route(
        "PUT",
        "/v1/me/password",
        {"current_password": "wrong", "new_password": "fjelltur i tåke og regn"},
        auth="bearer",
        kinds={"current_password": "password", "new_password": "new-password"},
        required=("current_password", "new_password"),
    ),
    Route("POST", "/v1/me/totp", auth="bearer"),
    Route("POST", "/v1/me/totp/verify", {"code": "123456"}, auth="bearer", kinds={"code": "code"}, required=("code",)),
    Route("DELETE", "/v1/me/totp", auth="bearer"),
    Route("GET", "/v1/me/pin-letters", auth="bearer"),
    Route("POST", "/v1/me/pin-letters/block", auth="bearer"),
    Route("GET", "/v1/me/contact", auth="bearer"),
    Route(
        "PUT",
        "/v1/me/contact",
        {"mobile": "92345678"},
        auth="bearer",
        kinds={"mobile": "phone", "email": "email", "language": "language"},
        nullable=("mobile", "email", "language"),
    ),
    Route(
        "POST",
        "/v1/me/contact/verify",
        {"channel": "mobile", "code": "123456"},
        auth="bearer",
        kinds={"channel": "channel", "code": "code"},
        required=("channel", "code"),
    ),
    Route("POST", "/v1/me/contact/resend", auth="bearer"),
    Route("POST", "/v1/me/contact/confirm", auth="bearer"),
    Route(
        "PUT",
        "/v1/me/reservation",
        {"reserved": True},
        auth="bearer",
        kinds={"reserved": "bool"},
        required=("reserved",),
    ),
    Route(
        "POST",
        "/v1/password-resets",
        {"identity_number": "?"},
        kinds={"identity_number": "identity"},
        required=("identity_number",),
    ),
    Route(
        "POST",
        f"/v1/password-resets/{ID}/complete",
        {"pin_code": "123456", "code": "654321", "new_password": "fjelltur i tåke og regn"},
        kinds={"pin_code": "code", "code": "code", "new_password": "new-password"},
        required=("pin_code", "code", "new_password"),
        unknown_id=(401,),
    ),
    Route(
        "POST",
        f"/v1/print-provider/letters/{ID}/status",
        {"status": "dispatched"},
        auth="sigv4",
        kinds={"status": "status", "reason": "report"},
        required=("status",),
        nullable=("reason",),
    ),
    Route("GET", "/v1/health"),
]
BODY_ROUTES = [r for r in ROUTES if r.body is not None]
ID_ROUTES = [r for r in ROUTES if ID in r.path]


def _identity(birth: date, individual: int, **kwargs: Any) -> str:
    """The first number with check digits from `individual` on (some individual numbers have none)."""
    return next(
        number for i in range(individual, 1000) if (number := compose_identity_number(birth, i, **kwargs)) is not None
    )


def _bad_check_digit(number: str) -> str:
    return number[:10] + str((int(number[10]) + 1) % 10)


ADULT = "15108695088"  # python-stdnum's documented example
SYNTHETIC = _identity(date(1986, 10, 15), 950, synthetic=True)
BAD_IDENTITIES = {
    "10 digits": ADULT[:10],
    "12 digits": ADULT + "0",
    "a letter": ADULT[:5] + "A" + ADULT[6:],
    "spaces inside": ADULT[:6] + " " + ADULT[6:],
    "a wrong check digit": _bad_check_digit(ADULT),
    "an H-number": "15508620125",  # check digits that hold (tests/unit/test_identity.py)
    "an FH-number": "81234567802",
    # (from 2032 a number may hold any date: its individual number no longer gives the century)
    **({"a date in the future": _identity(TODAY + timedelta(days=40), 950)} if TODAY < RULE_2032_FROM else {}),
    "no such date": "31028650000",
    "all zeros": "00000000000",
    "Arabic-Indic digits": "".join(chr(0x0660 + int(c)) for c in ADULT),
    "full-width digits": "".join(chr(0xFF10 + int(c)) for c in ADULT),
    "a number": 15108695088,
}
BAD_PHONES = {
    "too short": "1234",
    "too long": "912345678901234",
    "letters": "nine one two",
    "a landline": "22 22 22 22",
    "no such country": "+999 1234 5678",
    "a premium number": "820 12 345",
}
BAD_EMAILS = {
    "no domain": "kari@",
    "no local part": "@example.no",
    "no top-level domain": "kari@example",
    "a space": "kari nordmann@example.no",
    "two dots": "kari@example..no",
    "markup": "<script>@example.no",
    "too long": "k" * 65 + "@example.no",
    "a display name": "Kari <kari@example.no>",
}
ODD_STRINGS = {
    "NUL": "a\x00b",
    "control characters": "\x07\x1b[31m\x7f",
    "a lone surrogate": "\ud800",
    "right-to-left override": "abc\u202edef",
    "zero-width space": "\u200b",
    "combining marks": "e\u0301\u0301\u0301",
    "emoji": "\U0001f600\U0001f469\u200d\U0001f4bb",
    "a newline": "line\nline",
}
WRONG_TYPES: dict[str, Any] = {"a number": 123456, "a float": 1.5, "true": True, "a list": ["x"], "an object": {"x": 1}}


@dataclass(frozen=True)
class BadInput:
    route: Route
    what: str
    body: bytes | None = None
    content_type: str = "application/json"
    path: str | None = None
    statuses: tuple[int, ...] = (422,)
    problems: tuple[str, ...] = ()  # problem slugs allowed; any when empty

    @property
    def id(self) -> str:
        return f"{self.route.label} | {self.what}"


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def _with(route: Route, name: str, value: Any) -> bytes:
    assert route.body is not None
    return _json({**route.body, name: value})


# What each kind of field must refuse beyond its type, and the problem it is refused with.
BAD_VALUES: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "identity": (BAD_IDENTITIES, ("invalid-identity-number", "invalid-request")),
    "phone": (BAD_PHONES, ("invalid-contact",)),
    "email": (BAD_EMAILS, ("invalid-contact",)),
}
STRUCTURED = ("bool", "pin_codes")  # not strings at all
FREE_TEXT = ("text", "password", "new-password", "report")  # any character, judged (a password) by its policy
UNBOUNDED = ("report",)  # longer than other text (a print failure's reason, not kept: up to 8 KiB)
BLANK_MEANS_NONE = ("phone", "email")  # an empty form field: no mobile (enrolment), remove it (a change)


def _field_cases(route: Route, name: str, kind: str) -> Iterator[BadInput]:
    """What the field must refuse, by what it holds."""
    values, problems = BAD_VALUES.get(kind, ({}, ()))
    for what, value in values.items():
        yield BadInput(route, f"{name}: {what}", _with(route, name, value), problems=problems)
    for what, value in WRONG_TYPES.items():
        if not (kind == "bool" and isinstance(value, bool)) and not (kind == "pin_codes" and isinstance(value, dict)):
            yield BadInput(route, f"{name}: {what}", _with(route, name, value), problems=("invalid-request",))
    if name not in route.nullable:
        yield BadInput(route, f"{name}: null", _with(route, name, None), problems=("invalid-request",))
    if kind in STRUCTURED:
        yield BadInput(route, f"{name}: a string", _with(route, name, "yes"), problems=("invalid-request",))
        return
    if kind in FREE_TEXT:  # no character is refused, but what is not a character at all (in a password long
        # enough for its policy: refused as the request's shape all the same, never a 5xx from its hash)
        surrogate = "fjelltur i tåke og regn \ud800"
        yield BadInput(route, f"{name}: a lone surrogate", _with(route, name, surrogate), problems=("invalid-request",))
    else:
        if kind not in BLANK_MEANS_NONE:
            yield BadInput(route, f"{name}: empty", _with(route, name, ""))
        for what, value in ODD_STRINGS.items():
            yield BadInput(route, f"{name}: {what}", _with(route, name, value))
    huge = 8 * 1024 + 1 if kind in UNBOUNDED else 5000
    # a new password's length is its policy's to judge (API.md: 422 weak-password)
    problem = "weak-password" if kind == "new-password" else "invalid-request"
    yield BadInput(route, f"{name}: huge", _with(route, name, "x" * huge), problems=(problem,))


def _pin_code_cases(route: Route) -> Iterator[BadInput]:
    for what, codes in {
        "one code": {"3": "123456"},
        "three codes": {"3": "123456", "7": "654321", "9": "111111"},
        "index 0": {"0": "123456", "7": "654321"},
        "index 21": {"21": "123456", "7": "654321"},
        "a code of 5 digits": {"3": "12345", "7": "654321"},
        "a code with letters": {"3": "12345a", "7": "654321"},
        "Arabic-Indic digits": {"3": "١٢٣٤٥٦", "7": "654321"},
        "an index in Arabic-Indic digits": {"1٣": "123456", "7": "654321"},
        "a lone surrogate in an index": {"3\ud800": "123456", "7": "654321"},
        "a lone surrogate in a code": {"3": "12345\ud800", "7": "654321"},
    }.items():
        yield BadInput(route, f"pin_codes: {what}", _with(route, "pin_codes", codes), statuses=(401, 422))


def _no_body_cases() -> Iterator[BadInput]:
    """A body where none is taken: refused, not ignored (none, or {}, is no body)."""
    bodies: dict[str, Any] = {"an object": {"mobile": "91234567"}, "a list": [], "null": None}
    for route in ROUTES:
        if route.body is not None:
            continue
        for what, value in bodies.items():
            yield BadInput(route, f"a body, {what}, where none is taken", _json(value), problems=("invalid-request",))
        malformed = b'{"a": '
        yield BadInput(
            route, "malformed JSON where no body is taken", malformed, statuses=(400,), problems=("invalid-request",)
        )


def bad_inputs() -> Iterator[BadInput]:
    for route in BODY_ROUTES:
        assert route.body is not None
        malformed = ('{"identity_number": ', "{'a': 1}", '{"a": 1,}', "NaN", '{"a": 1} {"b": 2}')
        for number, text in enumerate(malformed, 1):
            yield BadInput(
                route, f"malformed JSON {number}", text.encode(), statuses=(400,), problems=("invalid-request",)
            )
        yield BadInput(route, "not UTF-8", b'{"a": "\xff\xfe"}', statuses=(400,), problems=("invalid-request",))
        yield BadInput(route, "form-encoded", b"a=1&b=2", "application/x-www-form-urlencoded", statuses=(400,))
        yield BadInput(
            route,
            "over 16 KiB",
            _json({**route.body, "x": "a" * 17_000}),
            statuses=(413,),
            problems=("payload-too-large",),
        )
        yield BadInput(
            route, "nested 5,000 deep", b"[" * 5000 + b"]" * 5000, statuses=(400, 422), problems=("invalid-request",)
        )
        long_number = b'{"n": ' + b"1" * 5000 + b"}"  # past Python's 4,300 digits for an int: not a 500
        yield BadInput(route, "a number of 5,000 digits", long_number, statuses=(400,), problems=("invalid-request",))
        for what, value in {"a list": [], "a string": "x", "a number": 1, "null": None}.items():
            yield BadInput(route, f"the body is {what}", _json(value), problems=("invalid-request",))
        yield BadInput(route, "an unknown field", _with(route, "is_admin", True), problems=("invalid-request",))
        for name in route.required:
            yield BadInput(
                route,
                f"{name} missing",
                _json({k: v for k, v in route.body.items() if k != name}),
                problems=("invalid-request",),
            )
        for name, kind in route.kinds.items():
            yield from _field_cases(route, name, kind)
        if "pin_codes" in route.kinds:
            yield from _pin_code_cases(route)
        if route.one_of:
            none = _json(dict.fromkeys(route.one_of))
            yield BadInput(route, "none of its fields", none, problems=("invalid-request",))
            yield BadInput(route, "an empty body", _json({}), problems=("invalid-request",))
    yield from _no_body_cases()
    for route in ID_ROUTES:
        for what, value in {
            "not a UUID": "not-a-uuid",
            "upper case": str(uuid.uuid4()).upper(),
            "a version 1 UUID": str(uuid.uuid1()),
            "path traversal": "..%2F..%2Fme",
            "SQL": "1'%20OR%20'1'%3D'1",
        }.items():
            yield BadInput(route, f"id: {what}", _body(route), path=route.path.replace(ID, value), statuses=(404, 422))
        yield BadInput(
            route,
            "id: unknown",
            _body(route),
            path=route.path.replace(ID, str(uuid.uuid4())),
            statuses=route.unknown_id,
        )
    events = next(r for r in ROUTES if r.path == "/v1/me/events")
    for what, cursor in {"garbage": "%%%", "not ours": "eyJwayI6ICJ4In0", "huge": "a" * 3000}.items():
        yield BadInput(events, f"cursor: {what}", path=f"/v1/me/events?cursor={cursor}", statuses=(404, 422))


def _body(route: Route) -> bytes | None:
    return _json(route.body) if route.body is not None else None


CASES = list(bad_inputs())


@dataclass
class Bench:
    """One stack for the module: a user with a session, and ids of things that exist."""

    driver: LetterDriver
    user: User
    token: str
    login_id: str
    tables: dict[str, str]
    queues: list[str]
    last_state: str = ""

    def send(self, case: BadInput) -> HttpResponse:
        headers = [("Content-Type", case.content_type)]
        if case.route.auth == "bearer":
            headers.append(("Authorization", f"Bearer {self.token}"))
        elif case.route.auth == "sigv4":
            headers.append(("Authorization", SIGNED))
        # a login id that exists (someone else's, pending), or a fresh id where any will do
        path = case.path or case.route.path.replace(
            ID, self.login_id if "/login/" in case.route.path else str(uuid.uuid4())
        )
        # each case its own client address: the per-client limits have tests of their own
        client = int(hashlib.sha256(case.id.encode()).hexdigest()[:4], 16)
        return self.driver.gateway.handle(
            HttpRequest(
                case.route.method, path, headers, case.body or b"", source_ip=f"198.18.{client >> 8}.{client & 255}"
            )
        )

    def state(self) -> str:
        """A digest of everything stored, queued and sent (but rate counters, a session's last use and the
        register)."""
        digest = hashlib.sha256()
        for logical_id, name in sorted(self.tables.items()):
            if logical_id in UNCHANGED_TABLES:
                continue
            items = self.driver.dynamodb.scan(TableName=name)["Items"]
            kept = [
                {k: v for k, v in i.items() if k != TOUCHED}
                for i in items
                if not i.get("pk", {}).get("S", "").startswith("rate#")
            ]
            digest.update(json.dumps(sorted(json.dumps(i, sort_keys=True) for i in kept)).encode())
        for queue in self.queues:  # a notice queued, waiting or being sent (delivered: the outbox, below)
            counts = self.driver.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=QUEUE_COUNTS)["Attributes"]
            digest.update(json.dumps(counts, sort_keys=True).encode())
        outbox = self.driver.local.outbox.snapshot()
        digest.update(f"{len(outbox['sms'])}/{len(outbox['emails'])}".encode())
        digest.update(str(len(self.driver.executions())).encode())
        return digest.hexdigest()


@pytest.fixture(scope="module")
def bench() -> Iterator[Bench]:
    with local_driver() as driver:
        user = enrolled(driver)
        token = user.login()
        started = User(driver, user.enrolling, user.mobile).start_login()  # someone's login, pending
        login_id = json.loads(started.body)["login_id"]
        tables = {
            logical_id: driver.local.stack.refs[logical_id]
            for logical_id, resource in driver.local.template.resources.items()
            if resource["Type"] == "AWS::DynamoDB::Table"
        }
        queues = [
            driver.local.stack.refs[logical_id]
            for logical_id, resource in driver.local.template.resources.items()
            if resource["Type"] == "AWS::SQS::Queue"
        ]
        bench = Bench(driver, user, token, login_id, tables, queues)
        driver.notices_delivered()  # the welcome, before the state is taken
        bench.last_state = bench.state()
        yield bench


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_with_a_problem_and_changes_nothing(bench: Bench, case: BadInput) -> None:
    before = bench.last_state  # each case leaves the state as the one before it found it
    response = bench.send(case)
    assert response.status in case.statuses, (response.status, response.body[:300])
    assert response.header("content-type") == "application/problem+json"
    problem = json.loads(response.body)
    assert problem["status"] == response.status
    if case.problems:
        assert problem["type"] in {f"/problems/{slug}" for slug in case.problems}, problem
    assert "Traceback" not in response.body.decode()
    bench.last_state = bench.state()
    assert bench.last_state == before
