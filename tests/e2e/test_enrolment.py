"""Becoming a MinID user over HTTP: the letter from the outbox, the code from the outbox SMS."""

from __future__ import annotations

import re
from typing import Any

from tests.e2e.client import ApiClient
from tests.e2e.flows import eventually, letters_to, order, sms_to


def test_order_a_letter_and_enrol_with_it(api: ApiClient, persons: dict[str, list[dict[str, Any]]]) -> None:
    person = persons["adult"][30]
    assert order(api, person["identity_number"])[0] == 202
    # the codes work once the workflow has activated the letter, just after the outbox has it
    (letter,) = eventually(lambda: [x for x in letters_to(api, person["identity_number"]) if x["codes_work"]])

    started = api.post("/v1/enrolments", json_body={"identity_number": person["identity_number"]})
    assert started.status == 201
    enrolment_id, indices = started.json()["enrolment_id"], started.json()["pin_indices"]
    asked = {str(i): letter["pin_codes"][str(i)] for i in indices}
    # another tab's enrolment, started before the codes are used: it asks for the same ones
    spare = api.post("/v1/enrolments", json_body={"identity_number": person["identity_number"]})
    assert spare.json()["pin_indices"] == indices
    completed = api.post(
        f"/v1/enrolments/{enrolment_id}/complete",
        json_body={"pin_codes": asked, "password": "tåke over Nordkapp om morgenen", "mobile": "934 56 789"},
    )
    assert completed.status == 202
    assert completed.json() == {"verification_sent_to": ["mobile"]}

    code = re.findall(r"#(\d{6})$", sms_to(api, "+4793456789")[-1])[0]
    verified = api.post(f"/v1/enrolments/{enrolment_id}/verify", json_body={"mobile_code": code})
    assert verified.status == 201
    assert verified.json() == {"status": "active", "remaining": []}

    # the contact register has the verified mobile: the welcome notice goes to it
    eventually(lambda: any("bruker av MinID" in text for text in sms_to(api, "+4793456789")), what="no welcome SMS")

    again = api.post("/v1/enrolments", json_body={"identity_number": person["identity_number"]})
    assert not set(again.json()["pin_indices"]) & set(indices)  # the two used codes are never asked again
    reuse = api.post(  # given where they are asked for, once used, they are refused
        f"/v1/enrolments/{spare.json()['enrolment_id']}/complete",
        json_body={"pin_codes": asked, "password": "tåke over Nordkapp om morgenen", "mobile": "934 56 789"},
    )
    assert reuse.status == 401
    assert reuse.json()["type"] == "/problems/authentication-failed"


def test_the_start_looks_the_same_for_anyone(api: ApiClient, persons: dict[str, list[dict[str, Any]]]) -> None:
    answers = [
        api.post("/v1/enrolments", json_body={"identity_number": p["identity_number"]})
        for p in (persons["adult"][31], persons["child"][1], persons["deceased"][1])
    ]
    assert {a.status for a in answers} == {201}
    assert {tuple(sorted(a.json())) for a in answers} == {("enrolment_id", "expires_in", "pin_indices")}
