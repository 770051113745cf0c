"""Keeping the contact register current over HTTP: a new mobile, a new e-mail, confirm, reserve."""

from __future__ import annotations

import re
from typing import Any

from tests.e2e.client import ApiClient
from tests.e2e.flows import bearer, emails_to, enrol, eventually, last_code, log_in, sms_to


def test_change_mobile_and_email_confirm_and_reserve(api: ApiClient, persons: dict[str, list[dict[str, Any]]]) -> None:
    person = persons["adult"][50]
    number = person["identity_number"]
    enrol(api, person, "956 78 901")
    token = log_in(api, number, "sms", lambda login: last_code(api, "+4795678901"))

    changed = api.request("PUT", "/v1/me/contact", json_body={"mobile": "967 89 012"}, headers=bearer(token))
    assert changed.status == 202
    assert changed.json() == {"verification_sent_to": ["mobile"]}
    eventually(lambda: [t for t in sms_to(api, "+4795678901") if "blir endret" in t])  # the old number is told
    code = last_code(api, "+4796789012")
    verified = api.post("/v1/me/contact/verify", json_body={"channel": "mobile", "code": code}, headers=bearer(token))
    assert verified.status == 200
    assert verified.json()["mobile"] == "+4796789012"
    # the SMS login code now goes to the new number
    log_in(api, number, "sms", lambda login: last_code(api, "+4796789012"))

    fresh = log_in(api, number, "sms", lambda login: last_code(api, "+4796789012"))
    add = api.request("PUT", "/v1/me/contact", json_body={"email": "per@example.no"}, headers=bearer(fresh))
    assert add.json() == {"verification_sent_to": ["email"]}
    mail = eventually(lambda: emails_to(api, "per@example.no"))[-1]
    email_code = re.findall(r"\b(\d{6})\b", mail["body"])[0]
    with_email = api.post(
        "/v1/me/contact/verify", json_body={"channel": "email", "code": email_code}, headers=bearer(fresh)
    )
    assert with_email.json()["email"] == "per@example.no"
    assert with_email.json()["email_verified_at"]

    confirmed = api.post("/v1/me/contact/confirm", headers=bearer(fresh))
    assert confirmed.status == 200
    assert confirmed.json()["confirmation_due"] is False
    reserved = api.request("PUT", "/v1/me/reservation", json_body={"reserved": True}, headers=bearer(fresh))
    assert reserved.json()["reserved"] is True
    unreserved = api.request("PUT", "/v1/me/reservation", json_body={"reserved": False}, headers=bearer(fresh))
    assert unreserved.json()["reserved"] is False
    assert api.get("/v1/me/contact", headers=bearer(fresh)).json()["reserved"] is False
