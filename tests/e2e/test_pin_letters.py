"""Ordering PIN code letters over HTTP, and finding them posted in the local outbox."""

from __future__ import annotations

import time
from datetime import date
from typing import Any

from minid.domain.identity import compose_identity_number
from tests.e2e.client import ApiClient
from tests.e2e.flows import eventually, letters_to, order


def test_an_eligible_person_is_posted_a_letter_with_20_codes(
    api: ApiClient, persons: dict[str, list[dict[str, Any]]]
) -> None:
    person = persons["adult"][10]
    assert order(api, person["identity_number"])[0] == 202

    (letter,) = eventually(lambda: letters_to(api, person["identity_number"]))

    assert letter["status"] == "dispatched"
    assert letter["address"] == person["letter_address"]
    assert letter["name"] == person["name"]
    assert list(letter["pin_codes"]) == [str(i) for i in range(1, 21)]
    assert len(set(letter["pin_codes"].values())) == 20
    pdf = api.get(letter["pdf"])
    assert pdf.status == 200
    assert pdf.body.startswith(b"%PDF")


def test_a_d_number_holder_without_a_norwegian_address_gets_it_abroad(
    api: ApiClient, persons: dict[str, list[dict[str, Any]]]
) -> None:
    person = persons["dnr-abroad"][3]
    assert person["address"] == person["letter_address"]
    assert order(api, person["identity_number"])[0] == 202

    (letter,) = eventually(lambda: letters_to(api, person["identity_number"]))

    assert letter["address"] == person["letter_address"]
    assert letter["address"][-1] == letter["address"][-1].upper()  # the country, on its own line
    assert letter["manifest"]["postage"] == "international"


def test_no_letter_for_the_ineligible_the_unknown_and_a_second_order(
    api: ApiClient, persons: dict[str, list[dict[str, Any]]]
) -> None:
    eligible = persons["adult"][20]
    unknown = compose_identity_number(date(1977, 3, 14), 321, synthetic=True)
    assert unknown is not None
    assert unknown not in {p["identity_number"] for group in persons.values() for p in group}
    first = order(api, eligible["identity_number"])
    eventually(lambda: letters_to(api, eligible["identity_number"]))

    others = [persons["child"][0], persons["deceased"][0], persons["no-address"][0]]
    answers = [order(api, p["identity_number"]) for p in others]
    answers.append(order(api, unknown))
    answers.append(order(api, eligible["identity_number"]))  # again, within 24 hours

    assert set(answers) == {first}
    # ordered after them all, its letter posted: the refused orders' workflows, begun before it and shorter
    # (refused at the recipient's validation, before any document or print), have very likely ended by
    # then; a letter wrongly let through would take as long as the sentinel's: looked for a while longer
    sentinel = persons["adult"][21]
    assert order(api, sentinel["identity_number"]) == first
    eventually(lambda: letters_to(api, sentinel["identity_number"]))
    time.sleep(1)
    for person in others:
        assert letters_to(api, person["identity_number"]) == []
    assert letters_to(api, unknown) == []
    assert len(letters_to(api, eligible["identity_number"])) == 1


def test_a_bad_number_is_a_422_problem(api: ApiClient) -> None:
    response = api.post("/v1/pin-letters", json_body={"identity_number": "12345678901"})
    assert response.status == 422
    assert response.content_type == "application/problem+json"
    assert response.json()["type"] == "/problems/invalid-identity-number"
    assert response.json()["errors"][0]["field"] == "identity_number"
