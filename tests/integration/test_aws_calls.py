"""The AWS calls each request makes, counted on the benchmark's journey (bench/routes.py) through every
route: counts, not times, so they hold on any machine. `make bench` prints the table."""

from __future__ import annotations

from typing import Any

import pytest

from bench.calls import CallCounter
from bench.routes import aws_calls
from local.template import Template

# The most calls each step of a login may make (bench/__main__.py explains the goal of 3). A start: one
# read of everything it needs (the account, the client's counts, the contact record or the letter's
# ledger), the letter itself for a PIN, then one transaction (the attempt stored with the account as read
# and the client's hits counted), and the SMS. A verify: the try counted with the attempt read, the
# account counted and read, one transaction. A resend: the attempt read (it holds the number its code
# went to), one transaction (the new code, the mobile still verified, the client's codes counted), the SMS.
LOGIN_PATH_MOST = {
    "POST /v1/login (sms)": 3,
    "POST /v1/login (totp)": 2,
    "POST /v1/login (pin)": 3,
    "POST /v1/login/{login_id}/verify (sms)": 3,
    "POST /v1/login/{login_id}/verify (totp)": 3,
    "POST /v1/login/{login_id}/verify (pin)": 3,
    "POST /v1/login/{login_id}/resend": 3,
}


@pytest.fixture(scope="module")
def journey() -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    rows, operations = aws_calls(CallCounter())
    return {row["what"]: row for row in rows}, dict(operations)


def test_the_journey_takes_every_route_and_every_task(journey: tuple[dict[str, dict[str, Any]], Any]) -> None:
    rows, _ = journey
    routes = {route.key for route in Template.load().routes() if not route.path.startswith("$")}
    taken = {what.split(" (")[0] for what in rows}
    assert routes - taken == set()
    assert all(max(row["statuses"], default=200) < 400 for row in rows.values()), rows
    tasks = {"validate-recipient", "prepare-letter", "activate-letter", "notify"}
    assert {f"workflow task {task}" for task in tasks} <= set(rows)


def test_nothing_scans(journey: tuple[Any, dict[str, int]]) -> None:
    _, operations = journey
    assert [op for op in operations if op.endswith(".Scan")] == []


@pytest.mark.parametrize(("what", "most"), LOGIN_PATH_MOST.items())
def test_the_login_path_makes_few_calls(journey: tuple[dict[str, dict[str, Any]], Any], what: str, most: int) -> None:
    rows, _ = journey
    assert rows[what]["calls"] <= most, rows[what]["operations"]


def test_ones_own_profile_is_read_in_four_calls(journey: tuple[dict[str, dict[str, Any]], Any]) -> None:
    """The session, the account (both to authenticate), one batch (the population register, the contact
    register, the letter ledger), the letter."""
    rows, _ = journey
    assert rows["GET /v1/me"]["calls"] <= 4, rows["GET /v1/me"]["operations"]


def test_the_recipients_check_reads_once_and_writes_once(journey: tuple[dict[str, dict[str, Any]], Any]) -> None:
    """The letter; one batch (the population register, the contact register, the ledger); one transaction
    (the outcome, the quota reserved, the event)."""
    rows, _ = journey
    assert rows["workflow task validate-recipient"]["calls"] <= 3, rows["workflow task validate-recipient"][
        "operations"
    ]


def test_a_contact_is_verified_in_five_calls(journey: tuple[dict[str, dict[str, Any]], Any]) -> None:
    """The session and the account (to authenticate), the try counted with the change read, the record,
    one transaction (the register, the change settled, the event)."""
    rows, _ = journey
    row = rows["POST /v1/me/contact/verify"]
    assert row["calls"] <= 5, row["operations"]
