"""The citizen's flows over HTTP, as the e2e tests (and the fuzzing) walk them: order a letter, read the
outbox, enrol, log in."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

from tests.e2e.client import ApiClient

PASSWORD = "lys over Lofoten i mars"
OUTBOX_WAIT_SECONDS = 30
T = TypeVar("T")


def eventually(check: Callable[[], T], timeout: float = OUTBOX_WAIT_SECONDS, what: str = "it did not happen") -> T:
    """What `check` returns once it is truthy; polled, since the outbox fills in the background."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.1)
    return found


def letters_to(api: ApiClient, identity_number: str) -> list[dict[str, Any]]:
    return [x for x in api.get("/_local/outbox").json()["letters"] if x["identity_number"] == identity_number]


def sms_to(api: ApiClient, number: str) -> list[str]:
    return [m["message"] for m in api.get("/_local/outbox").json()["sms"] if m["to"] == number]


def emails_to(api: ApiClient, address: str) -> list[dict[str, str]]:
    return [m for m in api.get("/_local/outbox").json()["emails"] if m["to"] == address]


def last_code(api: ApiClient, number: str) -> str:
    """The last one-time code sent by SMS to the number (from its WebOTP line)."""
    codes: list[str] = [m for text in sms_to(api, number) for m in re.findall(r"#(\d{6})$", text)]
    assert codes, f"no code was sent to {number}"
    return codes[-1]


def order(api: ApiClient, identity_number: str) -> tuple[int, bytes]:
    response = api.post("/v1/pin-letters", json_body={"identity_number": identity_number})
    return response.status, response.body


def posted_letter(api: ApiClient, identity_number: str) -> dict[str, Any]:
    """Order a letter and wait until it is posted and its codes work; the outbox's letter."""
    assert order(api, identity_number)[0] == 202
    # the codes work once the workflow has activated the letter, just after the outbox has it
    (letter,) = eventually(
        lambda: [x for x in letters_to(api, identity_number) if x["codes_work"]], what="no letter came to work"
    )
    return letter


def enrol(api: ApiClient, person: dict[str, Any], mobile: str, password: str = PASSWORD) -> dict[str, str]:
    """Order a letter, enrol with it and the mobile; the letter's codes."""
    letter = posted_letter(api, person["identity_number"])
    started = api.post("/v1/enrolments", json_body={"identity_number": person["identity_number"]}).json()
    asked = {str(i): letter["pin_codes"][str(i)] for i in started["pin_indices"]}
    completion = {"pin_codes": asked, "password": password, "mobile": mobile}
    assert api.post(f"/v1/enrolments/{started['enrolment_id']}/complete", json_body=completion).status == 202
    code = last_code(api, "+47" + mobile.replace(" ", ""))
    verified = api.post(f"/v1/enrolments/{started['enrolment_id']}/verify", json_body={"mobile_code": code})
    assert verified.status == 201, verified.body
    codes: dict[str, str] = letter["pin_codes"]
    return codes


def log_in(
    api: ApiClient,
    identity_number: str,
    factor: str,
    code_for: Callable[[dict[str, Any]], str],
    password: str = PASSWORD,
) -> dict[str, Any]:
    """Log in all the way with the factor; the token response."""
    started = api.post(
        "/v1/login",
        json_body={"identity_number": identity_number, "password": password, "second_factor": factor},
    )
    assert started.status == 200, started.body
    login = started.json()
    verified = api.post(f"/v1/login/{login['login_id']}/verify", json_body={"code": code_for(login)})
    assert verified.status == 200, verified.body
    token: dict[str, Any] = verified.json()
    return token


def bearer(token: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token['access_token']}"}
