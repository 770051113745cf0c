"""Enumeration: the unauthenticated routes that take an identity number answer a known person, an
unknown number, an ineligible person and a locked account alike, in status, body and time.

Times are the handlers' own, in process on moto (the network would only add noise): each round calls
every kind once, in a shuffled order, and the medians over the rounds must lie within 10% of each
other. The medians are taken of each call's time relative to its round's median, so that a change in
the machine's load between rounds (another process, a garbage collection) falls on every kind alike
and cancels; the plain medians in milliseconds are printed beside them. A timing leak is systematic and
shows in every measurement; noise does not, so a measurement that misses is repeated, up to four
times, before the test fails. These tests are marked `timing`: `make test` runs them on their own,
after the rest, so that no other test competes for the cores while they measure.
"""

from __future__ import annotations

import json
import random
import re
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest

from local.gateway import HttpRequest, HttpResponse
from local.population_seed import Category
from minid.domain.identity import compose_identity_number
from minid.domain.rate_limits import ENROLMENT_PIN_GUESSES_PER_DAY
from tests.integration.conftest import local_driver
from tests.integration.letters import LetterDriver, fill_counters
from tests.integration.users import PASSWORD, User, enrolled

ROUNDS = 25
SECOND_STEP_ROUNDS = 15  # each known call of a second step spends a letter's try
TOLERANCE = 0.10
ATTEMPTS = 4
WRONG_PASSWORD = "ikke mitt passord i det hele tatt"
pytestmark = pytest.mark.timing
_ID = re.compile(r'"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"')
_NUMBER = re.compile(r"\b\d{1,2}\b")
_CHANNEL = re.compile(r'"second_factor":"(?:sms|email)"')  # a reset's channel is the person's (a decoy's too)


@dataclass
class People:
    driver: LetterDriver
    known: User  # enrolled, with a posted letter and a verified mobile
    locked: User  # enrolled, and locked by three wrong passwords
    registered: str  # in the population register, eligible for a letter, no MinID and no letter
    ineligible: str  # a child under 13
    unknown: str  # a valid number the register does not have
    calls: int = 0

    def workflows_finished(self) -> None:
        """Wait while a workflow is running (none waits for the print provider here: no order passes
        the quota or eligibility but the first, which the fixture posted)."""
        deadline = time.monotonic() + 10
        while self.driver.sfn.list_executions(
            stateMachineArn=self.driver.local.stack.refs["PinLetterWorkflow"], statusFilter="RUNNING"
        )["executions"]:
            assert time.monotonic() < deadline, "a workflow is still running"
            time.sleep(0.01)

    def orders_settled(self) -> None:
        """Each order starts a workflow, run by the embedded Step Functions, and a refused order of a
        person with contacts queues a notice: both finished before the next call is timed, since here
        they share the process (and its interpreter lock) with it."""
        self.workflows_finished()
        self.driver.notices_delivered()

    def post(self, path: str, body: dict[str, Any]) -> HttpResponse:
        """From a fresh client address each time: the per-client limits are not what is measured."""
        self.calls += 1
        client = f"198.19.{self.calls // 250}.{self.calls % 250 + 1}"
        request = HttpRequest("POST", path, [("Content-Type", "application/json")], json.dumps(body).encode(), client)
        return self.driver.gateway.handle(request)


@pytest.fixture(scope="module")
def people() -> Iterator[People]:
    # the same people, round after round: the limit on codes to one person is not what is measured
    with local_driver({"CodesToPersonPerHour": "1000000", "ResetCodesToPersonPerDay": "1000000"}) as driver:
        known, locked = enrolled(driver), enrolled(driver, mobile="92345678")
        for _ in range(3):
            assert locked.start_login(password=WRONG_PASSWORD).status == 401
        registered = driver.person(Category.ADULT).identity_number
        ineligible = driver.person(Category.CHILD).identity_number
        register = {p.identity_number for p in driver.local.population}
        unknown = next(
            n
            for i in range(100, 999)
            if (n := compose_identity_number(date(1979, 5, 17), i, synthetic=True)) and n not in register
        )
        yield People(driver, known, locked, registered, ineligible, unknown)


def shape(response: HttpResponse) -> tuple[int, str]:
    """The status and the body with its random parts (ids, code numbers) made alike."""
    body = _CHANNEL.sub('"second_factor":"<channel>"', response.body.decode())
    return response.status, _NUMBER.sub("<n>", _ID.sub('"<id>"', body))


Call = Callable[[], HttpResponse]


@dataclass
class Measurement:
    milliseconds: dict[str, float]  # per kind, the median
    relative: dict[str, float]  # per kind, the median of its time over its round's median time
    shapes: set[tuple[int, str]]  # every answer's status and body, made alike


def measured(calls: dict[str, Callable[[], Call]], settle: Callable[[], None], rounds: int) -> Measurement:
    """Each kind prepares its call (untimed: a fresh enrolment to complete, say), then the call is timed.
    After each call, `settle` waits for what it started in the background (a workflow) to finish before
    the next is timed."""
    times: dict[str, list[float]] = {kind: [] for kind in calls}
    relative: dict[str, list[float]] = {kind: [] for kind in calls}
    shapes: set[tuple[int, str]] = set()
    kinds = list(calls)
    for _ in range(rounds):
        random.shuffle(kinds)
        for kind in kinds:
            call = calls[kind]()
            started = time.perf_counter()
            response = call()
            times[kind].append((time.perf_counter() - started) * 1000)
            shapes.add(shape(response))
            settle()
        middle = statistics.median(times[kind][-1] for kind in kinds)
        for kind in kinds:
            relative[kind].append(times[kind][-1] / middle)
    return Measurement(
        {kind: statistics.median(t) for kind, t in times.items()},
        {kind: statistics.median(r) for kind, r in relative.items()},
        shapes,
    )


def spread(medians: dict[str, float]) -> float:
    return max(medians.values()) / min(medians.values()) - 1


def assert_alike(
    status: int,
    calls: dict[str, Callable[[], Call]],
    capsys: pytest.CaptureFixture[str],
    settle: Callable[[], None] = lambda: None,
    rounds: int = ROUNDS,
) -> None:
    for attempt in range(1, ATTEMPTS + 1):
        measurement = measured(calls, settle, rounds)
        shapes = measurement.shapes
        assert len(shapes) == 1, shapes  # the same status and body for every kind, every time
        assert next(iter(shapes))[0] == status, shapes
        with capsys.disabled():
            figures = ", ".join(f"{kind} {ms:.1f} ms" for kind, ms in measurement.milliseconds.items())
            print(
                f"\n  spread {spread(measurement.relative):.1%} within rounds, "
                f"{spread(measurement.milliseconds):.1%} of the medians (attempt {attempt}): {figures}"
            )
        if spread(measurement.relative) <= TOLERANCE:
            return
    pytest.fail(
        f"the times differ by {spread(measurement.relative):.1%} (more than {TOLERANCE:.0%}): "
        f"{measurement.relative} relative, {measurement.milliseconds} ms"
    )


def test_ordering_a_letter(people: People, capsys: pytest.CaptureFixture[str]) -> None:
    def order(number: str) -> Callable[[], Call]:
        return lambda: lambda: people.post("/v1/pin-letters", {"identity_number": number})

    assert_alike(
        202,
        {
            "known": order(people.known.identity_number),
            "unknown": order(people.unknown),
            "ineligible": order(people.ineligible),
            "locked": order(people.locked.identity_number),
        },
        capsys,
        settle=people.orders_settled,
    )


def test_starting_an_enrolment(people: People, capsys: pytest.CaptureFixture[str]) -> None:
    def start(number: str) -> Callable[[], Call]:
        return lambda: lambda: people.post("/v1/enrolments", {"identity_number": number})

    assert_alike(
        201,
        {
            "known": start(people.known.identity_number),
            "unknown": start(people.unknown),
            "ineligible": start(people.ineligible),
            "locked": start(people.locked.identity_number),
        },
        capsys,
    )


def test_logging_in(people: People, capsys: pytest.CaptureFixture[str]) -> None:
    def login(number: str, password: str = WRONG_PASSWORD) -> Callable[[], Call]:
        return lambda: lambda: people.post("/v1/login", {"identity_number": number, "password": password})

    # a wrong password for the known would lock them: they are locked already, and give the right one
    assert_alike(
        401,
        {
            "locked, right password": login(people.locked.identity_number, PASSWORD),
            "locked, wrong password": login(people.locked.identity_number),
            "unknown": login(people.unknown),
            "no MinID": login(people.registered),
        },
        capsys,
    )


def test_starting_a_password_reset(people: People, capsys: pytest.CaptureFixture[str]) -> None:
    def start(number: str) -> Callable[[], Call]:
        return lambda: lambda: people.post("/v1/password-resets", {"identity_number": number})

    assert_alike(
        201,
        {
            "known": start(people.known.identity_number),
            "unknown": start(people.unknown),
            "no MinID": start(people.registered),
            "locked": start(people.locked.identity_number),
        },
        capsys,
        # Each start queues its code, and the notifier sends it in the background: an SMS for a real
        # reset, nothing for a decoy. On AWS the notifier is another function; here it shares the process
        # and its interpreter lock, so the next call would be slowed by the SMS of the one before. Two of
        # the four kinds are real, so a decoy follows a real start more often than a real start does.
        settle=lambda: people.driver.notices_delivered(queue_name="CodeQueue"),
    )


# ---------------------------------------------------------------------- the second steps
# Wrong codes to an enrolment or a reset that a known person started, and to one that a decoy stands
# for: the same 401, in the same time. Wrong PIN codes count against the letter at a reset (5 block it),
# and against the person's guesses a day at an enrolment, so the known kinds draw on a pool of letters,
# four tries each, a fresh enrolment or reset every call.
TRIES_PER_LETTER = 4


def rotating(numbers: list[str]) -> Iterator[str]:
    for number in numbers:
        yield from [number] * TRIES_PER_LETTER


@pytest.fixture(scope="module")
def pool(people: People) -> list[User]:
    size = SECOND_STEP_ROUNDS * ATTEMPTS // TRIES_PER_LETTER + 1
    return [enrolled(people.driver, mobile=f"93{i:06d}") for i in range(size)]


def test_wrong_codes_to_an_enrolment(people: People, pool: list[User], capsys: pytest.CaptureFixture[str]) -> None:
    known = rotating([u.identity_number for u in pool])
    # a known person whose guesses today are used up: nothing judged, answered as wrong codes
    used_up = enrolled(people.driver, mobile="93999999").identity_number
    day = 86400
    fill_counters(
        people.driver, "enrolment-pin-guesses", people.driver.key(used_up), day, ENROLMENT_PIN_GUESSES_PER_DAY
    )

    def complete(numbers: Iterator[str]) -> Callable[[], Call]:
        def prepare() -> Call:
            started = json.loads(people.post("/v1/enrolments", {"identity_number": next(numbers)}).body)
            codes = {str(i): "000000" for i in started["pin_indices"]}
            body = {"pin_codes": codes, "password": "et helt nytt og langt passord", "mobile": "41234567"}
            return lambda: people.post(f"/v1/enrolments/{started['enrolment_id']}/complete", body)

        return prepare

    assert_alike(
        401,
        {
            "known": complete(known),
            "known, its guesses used up": complete(iter(lambda: used_up, None)),
            "unknown": complete(iter(lambda: people.unknown, None)),
            "ineligible": complete(iter(lambda: people.ineligible, None)),
        },
        capsys,
        rounds=SECOND_STEP_ROUNDS,
    )


def test_wrong_codes_to_a_password_reset(people: People, pool: list[User], capsys: pytest.CaptureFixture[str]) -> None:
    known = rotating([u.identity_number for u in reversed(pool)])

    def complete(numbers: Iterator[str]) -> Callable[[], Call]:
        def prepare() -> Call:
            started = json.loads(people.post("/v1/password-resets", {"identity_number": next(numbers)}).body)
            people.driver.notices_delivered(queue_name="CodeQueue")  # a known's SMS is not sent while timed
            body = {"pin_code": "000000", "code": "000000", "new_password": "et helt nytt og langt passord"}
            return lambda: people.post(f"/v1/password-resets/{started['reset_id']}/complete", body)

        return prepare

    assert_alike(
        401,
        {
            "known": complete(known),
            "unknown": complete(iter(lambda: people.unknown, None)),
            "no MinID": complete(iter(lambda: people.registered, None)),
        },
        capsys,
        rounds=SECOND_STEP_ROUNDS,
    )
