"""A user enrolled through the real flow logs in three ways over HTTP, looks at themselves, and logs out."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp

from tests.e2e.client import ApiClient
from tests.e2e.test_enrolment import sms_to
from tests.e2e.test_pin_letters import letters_to, order, wait_for

PASSWORD = "lys over Lofoten i mars"


def enrol(api: ApiClient, person: dict[str, Any], mobile: str) -> dict[str, str]:
    """Order a letter, enrol with it; the letter's codes."""
    assert order(api, person["identity_number"])[0] == 202
    (letter,) = wait_for(lambda: letters_to(api, person["identity_number"]))
    time.sleep(0.5)
    started = api.post("/v1/enrolments", json_body={"identity_number": person["identity_number"]}).json()
    asked = {str(i): letter["pin_codes"][str(i)] for i in started["pin_indices"]}
    completion = {"pin_codes": asked, "password": PASSWORD, "mobile": mobile}
    assert api.post(f"/v1/enrolments/{started['enrolment_id']}/complete", json_body=completion).status == 202
    code = last_code(api, "+47" + mobile.replace(" ", ""))
    verified = api.post(f"/v1/enrolments/{started['enrolment_id']}/verify", json_body={"mobile_code": code})
    assert verified.status == 201
    codes: dict[str, str] = letter["pin_codes"]
    return codes


def last_code(api: ApiClient, number: str) -> str:
    codes: list[str] = [m for text in sms_to(api, number) for m in re.findall(r"#(\d{6})$", text)]
    return codes[-1]


def log_in(api: ApiClient, identity_number: str, factor: str, code_for: Any) -> dict[str, Any]:
    started = api.post(
        "/v1/login",
        json_body={"identity_number": identity_number, "password": PASSWORD, "second_factor": factor},
    )
    assert started.status == 200, started.body
    login = started.json()
    verified = api.post(f"/v1/login/{login['login_id']}/verify", json_body={"code": code_for(login)})
    assert verified.status == 200, verified.body
    token: dict[str, Any] = verified.json()
    return token


def bearer(token: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token['access_token']}"}


def test_log_in_with_sms_pin_and_totp_then_log_out(api: ApiClient, persons: dict[str, list[dict[str, Any]]]) -> None:
    person = persons["adult"][40]
    number = person["identity_number"]
    codes = enrol(api, person, "945 67 890")

    by_sms = log_in(api, number, "sms", lambda login: last_code(api, "+4794567890"))
    assert by_sms["amr"] == ["Minid-OTC"]
    by_pin = log_in(api, number, "pin", lambda login: codes[str(login["pin_index"])])
    assert by_pin["amr"] == ["Minid-PIN"]

    added = api.post("/v1/me/totp", headers=bearer(by_pin))
    assert added.status == 201
    totp = pyotp.TOTP(added.json()["secret"])
    assert api.post("/v1/me/totp/verify", json_body={"code": totp.now()}, headers=bearer(by_pin)).status == 204
    next_step = datetime.now(UTC) + timedelta(seconds=30)  # the confirming code's step is spent
    by_totp = log_in(api, number, "totp", lambda login: totp.at(next_step))
    assert by_totp["acr"] == "idporten-loa-substantial"
    assert by_totp["amr"] == ["Minid-TOTP"]

    me = api.get("/v1/me", headers=bearer(by_totp))
    assert me.status == 200
    assert me.json()["identity_number"] == number
    assert me.json()["name"] == person["name"]
    assert set(me.json()["second_factors"]) == {"sms", "pin", "totp"}
    events = api.get("/v1/me/events", headers=bearer(by_totp)).json()["events"]
    assert [e["type"] for e in events[:3]] == ["login-succeeded", "totp-added", "login-succeeded"]

    assert api.post("/v1/logout", headers=bearer(by_totp)).status == 204
    after = api.get("/v1/me", headers=bearer(by_totp))
    assert after.status == 401
    assert after.json()["type"] == "/problems/authentication-failed"
    assert api.get("/v1/me", headers=bearer(by_sms)).status == 200  # other sessions live on
