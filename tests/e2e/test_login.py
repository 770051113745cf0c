"""A user enrolled through the real flow logs in three ways over HTTP, looks at themselves, and logs out."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp

from tests.e2e.client import ApiClient
from tests.e2e.flows import bearer, enrol, eventually, last_code, log_in, sms_to


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


def test_a_forgotten_password_is_made_anew_with_the_letter_and_a_code(
    api: ApiClient, persons: dict[str, list[dict[str, Any]]]
) -> None:
    """The reset's code comes by SMS (through its queue and the notifier), the letter gives the PIN code asked
    for: every session ends, the new password logs in, and the person is told. (Its codes and passwords are
    among what the stack's logs are searched for.)"""
    person = persons["adult"][45]
    number, mobile = person["identity_number"], "+4794567891"
    codes = enrol(api, person, "945 67 891")
    before = log_in(api, number, "sms", lambda login: last_code(api, mobile))
    started = api.post("/v1/password-resets", json_body={"identity_number": number})
    assert started.status == 201
    reset = started.json()
    assert (reset["second_factor"], reset["expires_in"]) == ("sms", 600)
    # the reset's own code, not any SMS that comes next (the welcome may still be on its way)
    (text,) = eventually(lambda: [t for t in sms_to(api, mobile) if "for nytt passord" in t], what="no reset code")
    new_password = "ny frase om vinteren i Tromsø"
    completion = {
        "pin_code": codes[str(reset["pin_index"])],
        "code": re.findall(r"#(\d{6})$", text)[0],
        "new_password": new_password,
    }
    completed = api.post(f"/v1/password-resets/{reset['reset_id']}/complete", json_body=completion)
    assert completed.status == 204, completed.body
    assert api.get("/v1/me", headers=bearer(before)).status == 401  # every session ended
    eventually(lambda: [text for text in sms_to(api, mobile) if "PIN-kodebrevet" in text], what="the reset untold")
    after = log_in(api, number, "sms", lambda login: last_code(api, mobile), password=new_password)
    events = [e["type"] for e in api.get("/v1/me/events", headers=bearer(after)).json()["events"]]
    assert events[:2] == ["login-succeeded", "password-reset"]
