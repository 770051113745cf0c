"""People with letters and MinID accounts, made through the real routes, for the tests of what comes after."""

from __future__ import annotations

import itertools
import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from local.gateway import HttpRequest, HttpResponse
from local.population_seed import Category, SeededPerson
from tests.integration.letters import LetterDriver, posted

PASSWORD = "sommerfugl i vinterland"


_ENROLLING = itertools.count(1)


class Enrolling:
    """A person with a posted letter, enrolling through the routes, from an address of their own (the
    routes count each client's starts and codes sent)."""

    def __init__(self, driver: LetterDriver, person: SeededPerson, codes: dict[str, str]) -> None:
        self.driver = driver
        self.person = person
        self.codes = codes
        self.enrolment_id = ""
        self.indices: list[int] = []
        n = next(_ENROLLING)
        self.source_ip = f"198.51.{101 + (n >> 8) % 150}.{n & 255}"

    def post(self, path: str, body: Any = None) -> HttpResponse:
        data = json.dumps(body).encode() if body is not None else b""
        headers = [("Content-Type", "application/json")]
        return self.driver.gateway.handle(HttpRequest("POST", path, headers, data, source_ip=self.source_ip))

    def start(self) -> dict[str, Any]:
        response = self.post("/v1/enrolments", {"identity_number": self.person.identity_number})
        assert response.status == 201, response.body
        started: dict[str, Any] = json.loads(response.body)
        self.enrolment_id, self.indices = started["enrolment_id"], started["pin_indices"]
        return started

    def complete(self, codes: dict[str, str] | None = None, **fields: Any) -> Any:
        body = {
            "pin_codes": codes if codes is not None else {str(i): self.codes[str(i)] for i in self.indices},
            "password": PASSWORD,
        } | fields
        if "mobile" not in body and "email" not in body:
            body["mobile"] = "91234567"
        return self.post(f"/v1/enrolments/{self.enrolment_id}/complete", body)

    def verify(self, **codes: str) -> Any:
        return self.post(f"/v1/enrolments/{self.enrolment_id}/verify", codes)

    def resend(self) -> Any:
        return self.post(f"/v1/enrolments/{self.enrolment_id}/resend")

    def last_code_to(self, address: str) -> str:
        """The last one-time code sent to a mobile or e-mail address ("... er 123456." / "... is 123456.");
        a password reset's once the notifier has sent it."""
        self.driver.reset_codes_sent()
        outbox = self.driver.local.outbox.snapshot()
        texts = [m["message"] for m in outbox["sms"] if m["to"] == address]
        texts += [m["body"] for m in outbox["emails"] if m["to"] == address]
        codes = [found.group(1) for text in texts if (found := re.search(r"\b(?:er|is) (\d{6})\.", text))]
        assert codes, f"no code was sent to {address}"
        return codes[-1]

    def enrol(self, mobile: str = "91234567", email: str | None = None) -> None:
        self.start()
        self.finish(mobile, email)

    def finish(self, mobile: str = "91234567", email: str | None = None) -> None:
        """An enrolment started, completed with these contacts and verified with their codes."""
        fields: dict[str, Any] = {"mobile": mobile} | ({"email": email} if email else {})
        assert self.complete(**fields).status == 202
        codes = {"mobile_code": self.last_code_to(f"+47{mobile}")}
        if email:
            codes["email_code"] = self.last_code_to(email)
        response = self.verify(**codes)
        assert response.status == 201, response.body


def with_letter(driver: LetterDriver, category: Category = Category.ADULT) -> Enrolling:
    person = driver.person(category)
    _, codes = posted(driver, person.identity_number)
    return Enrolling(driver, person, codes)


@dataclass
class User:
    """An enrolled MinID user, logging in and using their session through the routes."""

    driver: LetterDriver
    enrolling: Enrolling
    mobile: str | None
    password: str = PASSWORD
    source_ip: str = "198.51.100.7"

    @property
    def identity_number(self) -> str:
        return self.enrolling.person.identity_number

    @property
    def codes(self) -> dict[str, str]:
        return self.enrolling.codes

    def call(
        self, method: str, path: str, body: Any = None, token: str | None = None, source_ip: str | None = None
    ) -> HttpResponse:
        headers = [("Content-Type", "application/json")]
        if token:
            headers.append(("Authorization", f"Bearer {token}"))
        data = json.dumps(body).encode() if body is not None else b""
        request = HttpRequest(method, path, headers, data, source_ip=source_ip or self.source_ip)
        response = self.driver.gateway.handle(request)
        if (method, path, response.status) == ("POST", "/v1/password-resets", 201):
            self.driver.resets_started.append(json.loads(response.body)["reset_id"])  # its code is queued
        return response

    def start_login(self, password: str | None = None, second_factor: str | None = None) -> HttpResponse:
        body: dict[str, Any] = {"identity_number": self.identity_number, "password": password or self.password}
        if second_factor:
            body["second_factor"] = second_factor
        return self.call("POST", "/v1/login", body)

    def verify(self, login_id: str, code: str) -> HttpResponse:
        return self.call("POST", f"/v1/login/{login_id}/verify", {"code": code})

    def last_sms_code(self) -> str:
        assert self.mobile is not None
        return self.enrolling.last_code_to(self.mobile)

    def login(self, second_factor: str | None = None, code: str | None = None) -> str:
        """Log in all the way; the access token."""
        started = self.start_login(second_factor=second_factor)
        assert started.status == 200, started.body
        login = json.loads(started.body)
        if code is None:
            code = self.codes[str(login["pin_index"])] if login["second_factor"] == "pin" else self.last_sms_code()
        verified = self.verify(login["login_id"], code)
        assert verified.status == 200, verified.body
        token: str = json.loads(verified.body)["access_token"]
        return token


def enrolled(driver: LetterDriver, mobile: str | None = "91234567", email: str | None = None) -> User:
    """A person with a posted letter who enrolled with it (two of its codes are used)."""
    enrolling = with_letter(driver)
    enrolling.start()
    fields: dict[str, Any] = {}
    if mobile:
        fields["mobile"] = mobile
    if email:
        fields["email"] = email
    assert enrolling.complete(**fields).status == 202
    codes = {}
    if mobile:
        codes["mobile_code"] = enrolling.last_code_to(f"+47{mobile}")
    if email:
        codes["email_code"] = enrolling.last_code_to(email)
    assert enrolling.verify(**codes).status == 201
    driver.notices_delivered()  # the welcome: a test's own messages are not raced by it
    return User(driver, enrolling, f"+47{mobile}" if mobile else None)


@dataclass
class MovableClock:
    """A clock the test moves: lockouts lifting, sessions expiring."""

    moment: datetime = field(default_factory=lambda: datetime.now(UTC))

    def now(self) -> datetime:
        return self.moment

    def advance(self, by: timedelta) -> None:
        self.moment += by


@dataclass(frozen=True)
class CodesAlike:
    """A random source that draws every code as `code` (two requests drawing the same code by chance); ids
    and tokens as the system's."""

    code: int

    def randbelow(self, upper: int) -> int:
        return self.code % upper

    def token_hex(self, nbytes: int) -> str:
        return secrets.token_hex(nbytes)
