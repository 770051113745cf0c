"""Request cost and AWS calls, in process, on moto (embedded, as the integration tests run).

- Request cost: the login's password step and its verify step, each timed from the payload 2.0 event
  handed to the login function's real handler to its response, beside one argon2id verify with the
  configured parameters (the work the password step cannot avoid). Rounds interleave the three.
- AWS calls: a citizen's whole journey through every route, each request's calls counted under its
  route; the workflow's tasks, the notifier and the daily review are counted per invocation.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp

from bench.calls import CallCounter, Calls
from local.aws import embedded_aws
from local.functions import LambdaFunction
from local.gateway import HttpRequest, HttpResponse, payload_v2_event
from local.population_seed import Category, SeededPerson
from local.print_provider import ACCESS_KEY_ID, read_printed_letter
from local.stack import LocalStack
from minid.adapters.dynamodb import iso, to_item
from minid.adapters.passwords import Argon2PasswordHasher
from tests.integration.letters import LetterDriver, age_ledger, wait_for
from tests.integration.users import PASSWORD, Enrolling, User, enrolled


# Invocations that are not a route: counted per invocation, under these labels.
def _workflow_task(event: dict[str, Any]) -> str:
    return " ".join(["workflow task", str(event.get("task")), *([f"({event['notice']})"] if "notice" in event else [])])


INVOKED = {
    "LetterWorkflowFunction": _workflow_task,
    "LetterActivationFunction": _workflow_task,
    "NotifierFunction": lambda event: (
        "notifier (locks from the events' stream)"
        if event.get("Records") and event["Records"][0].get("eventSource") == "aws:dynamodb"
        else f"notifier ({len(event.get('Records', []))} notice)"
    ),
    "ContactReviewFunction": lambda event: "daily contact review",
}


# An execution environment reads the pepper once: as its first invocation builds the function's services (the
# only AWS call the building makes), or (the letter workflow's checks) as it prepares its first letter.
# That read is counted apart, the first time an environment makes it, so that a route's or a task's count
# is its request's, however the invocations fell on environments (the workflow's letters overlap, and may
# make environments mid-journey); a read again in the same environment is a request's, and counted so.
ENVIRONMENT_CALLS = frozenset({"secretsmanager.GetSecretValue"})


@dataclass
class Tally:
    """Per label: the calls of each invocation, and the answers (for routes); and the calls that built
    an execution environment, apart."""

    counter: CallCounter
    invocations: dict[str, list[Calls]] = field(default_factory=dict)
    statuses: dict[str, set[int]] = field(default_factory=dict)
    environments: dict[str, Counter[str]] = field(default_factory=dict)
    _set_up: set[int] = field(default_factory=set)  # the environments whose pepper read is counted apart
    _this_thread: threading.local = field(default_factory=threading.local)

    @contextmanager
    def counting(self, label: str) -> Iterator[None]:
        """Count what is done inside under `label`; the call that set up an execution environment a function
        invoked inside it (in this thread) ran in, apart, the first time that environment makes it."""
        self._this_thread.environments = []
        with self.counter.counting() as calls:
            try:
                yield
            finally:  # an invocation that raised made its calls too
                new = {id(environment) for environment in self._this_thread.environments} - self._set_up
                made = ENVIRONMENT_CALLS & set(calls.operations)
                if new and made:
                    self._set_up |= new
                    built = self.environments.setdefault(label, Counter())
                    for operation in made:  # one each (a read again is a request's)
                        apart = min(calls.operations[operation], len(new))
                        built[operation] += apart
                        calls.operations[operation] -= apart
                    calls.operations = +calls.operations  # (what is left at none dropped)
                self.invocations.setdefault(label, []).append(calls)

    def saw_invocation_of(self, function: LambdaFunction) -> None:
        environment = function.environment()
        if environment is not None and hasattr(self._this_thread, "environments"):
            self._this_thread.environments.append(environment)

    def rows(self) -> list[dict[str, Any]]:
        rows = []
        for label, invocations in self.invocations.items():
            most = max(invocations, key=lambda calls: calls.total)
            rows.append(
                {
                    "what": label,
                    "calls": most.total,
                    "operations": dict(sorted(most.operations.items())),
                    "invocations": len(invocations),
                    "statuses": sorted(self.statuses.get(label, ())),
                    "environment_calls": dict(sorted(self.environments.get(label, Counter()).items())),
                }
            )
        return rows


@contextmanager
def embedded_stack(
    counter: CallCounter, tally: Tally | None = None, parameters: dict[str, str] | None = None
) -> Iterator[LetterDriver]:
    """The local stack on embedded moto, the bench playing the print provider, as the integration tests do."""
    with embedded_aws() as session:
        local = LocalStack.start(session, print_delay_seconds=None, population_size=120, parameters=parameters)
        counter.install()
        if tally is not None:
            for function in local.functions.by_logical_id.values():
                _tell_new_environments(function, tally)
            for logical_id, label_of in INVOKED.items():
                _label_invocations(local.functions.by_logical_id[logical_id], tally, label_of)
        driver = LetterDriver(local)
        try:
            yield driver
        finally:
            counter.uninstall()
            driver.stop_running()
            local.stop()


def _tell_new_environments(function: LambdaFunction, tally: Tally) -> None:
    invoke = function.invoke

    def told(event: Any, seconds_left: int | None = None) -> Any:
        try:
            return invoke(event, seconds_left)
        finally:
            tally.saw_invocation_of(function)

    function.invoke = told  # type: ignore[method-assign]


def _label_invocations(function: LambdaFunction, tally: Tally, label_of: Callable[[Any], str]) -> None:
    invoke = function.invoke

    def counted(event: Any, seconds_left: int | None = None) -> Any:
        with tally.counting(label_of(event)):
            return invoke(event, seconds_left)

    function.invoke = counted  # type: ignore[method-assign]


# ---------------------------------------------------------------------- request cost
@dataclass(frozen=True)
class RequestCost:
    hash_ms: float
    # step -> median ms: in all, outside its AWS calls' requests, outside the SDK's methods altogether
    steps: dict[str, tuple[float, float, float]]
    rounds: int
    # step -> operation -> (calls a request made, median ms a request spent in their requests: on moto,
    # mostly moto's work); the two steps make the same calls every round (a call missing from a round
    # would count as 0 ms there)
    operations: dict[str, dict[str, tuple[int, float]]]

    def json(self) -> dict[str, Any]:
        figures: dict[str, Any] = {"argon2id_verify_ms": round(self.hash_ms, 2), "rounds": self.rounds}
        for step, (ms, own_ms, without_sdk_ms) in self.steps.items():
            figures[step] = {
                "ms": round(ms, 2),
                "ratio": round(ms / self.hash_ms, 3),
                "aws_calls": sum(n for n, _ in self.operations[step].values()),
                "ms_outside_aws_calls": round(own_ms, 2),
                "ratio_outside_aws_calls": round(own_ms / self.hash_ms, 3),
                "ms_outside_sdk_calls": round(without_sdk_ms, 2),
                "ratio_outside_sdk_calls": round(without_sdk_ms / self.hash_ms, 3),
                "aws_calls_by_operation": {op: n for op, (n, _) in self.operations[step].items()},
                "aws_call_ms_by_operation": {op: round(ms, 2) for op, (_, ms) in self.operations[step].items()},
            }
        return figures


def request_cost(counter: CallCounter, rounds: int = 30, warm_up: int = 3) -> RequestCost:
    """The SMS login's two steps, each beside one argon2id verify, in interleaved rounds."""
    # one person logs in every round: the codes an hour to one person are not measured either
    with embedded_stack(counter, parameters={"CodesToPersonPerHour": "1000000"}) as driver:
        user = enrolled(driver, mobile="93000001")
        # the local stack's pollers stopped (the notifier's queues and stream; no print simulator runs): the two
        # steps need none of them (the login sends its SMS itself), and each asks moto (the queues' every
        # 50 ms, the stream's every 250 ms when idle), under its lock and the GIL, within the handler's time
        # (some 1.5 ms of the verify step's)
        driver.local.stop()
        hasher = Argon2PasswordHasher(driver.local.keyer)
        stored = hasher.hash(PASSWORD)
        hashes: list[float] = []
        times: dict[str, list[tuple[float, Calls]]] = {"password_step": [], "verify_step": []}
        for number in range(rounds + warm_up):
            client = f"198.18.{number // 250}.{number % 250 + 1}"  # the per-client limits are not measured
            started = time.perf_counter()
            assert hasher.verify(stored, PASSWORD)
            hashed = (time.perf_counter() - started) * 1000
            login = {"identity_number": user.identity_number, "password": PASSWORD}
            password = timed_invoke(driver, counter, "POST", "/v1/login", login, client=client)
            login_id = json.loads(password.answer["body"])["login_id"]
            code = {"code": user.last_sms_code()}
            verify = timed_invoke(driver, counter, "POST", f"/v1/login/{login_id}/verify", code, client=client)
            assert verify.answer["statusCode"] == 200, verify.answer
            if number >= warm_up:  # the first rounds make the execution environment and its clients
                hashes.append(hashed)
                times["password_step"].append((password.ms, password.calls))
                times["verify_step"].append((verify.ms, verify.calls))
        steps = {
            step: (
                statistics.median(ms for ms, _ in runs),
                statistics.median(ms - calls.seconds * 1000 for ms, calls in runs),
                statistics.median(ms - calls.sdk_seconds * 1000 for ms, calls in runs),
            )
            for step, runs in times.items()
        }
        for step, runs in times.items():  # as `operations` has it: one round's calls are every round's
            assert len({frozenset(calls.operations.items()) for _, calls in runs}) == 1, step
        operations = {
            step: {
                op: (
                    max(calls.operations[op] for _, calls in runs),
                    statistics.median(calls.operation_seconds.get(op, 0.0) * 1000 for _, calls in runs),
                )
                for op in sorted({op for _, calls in runs for op in calls.operations})
            }
            for step, runs in times.items()
        }
        return RequestCost(statistics.median(hashes), steps, rounds, operations)


@dataclass(frozen=True)
class Invocation:
    ms: float
    calls: Calls
    answer: dict[str, Any]


def timed_invoke(
    driver: LetterDriver, counter: CallCounter, method: str, path: str, body: dict[str, Any], *, client: str
) -> Invocation:
    """The handler's time from the payload 2.0 event in to its response out, and its AWS calls."""
    route, parameters = driver.gateway.match(method, path)
    assert route is not None
    request = HttpRequest(method, path, [("Content-Type", "application/json")], json.dumps(body).encode(), client)
    event = payload_v2_event(request, route, parameters)
    function = driver.local.functions.by_logical_id[route.function]
    with counter.counting() as calls:
        started = time.perf_counter()
        answer: dict[str, Any] = function.invoke(event)
        ms = (time.perf_counter() - started) * 1000
    return Invocation(ms, calls, answer)


# ---------------------------------------------------------------------- AWS calls
@dataclass
class Journey:
    """A citizen through every route; each request counted under its route's key."""

    driver: LetterDriver
    tally: Tally

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        *,
        note: str = "",
        headers: Sequence[tuple[str, str]] = (),
    ) -> HttpResponse:
        """The request, its calls counted under its route's key (and `note`: which second factor). Refused
        only where its note says it is (REFUSED): a request refused by mistake would make fewer calls, and
        its row would show the cost of a refusal as the route's."""
        route, _ = self.driver.gateway.match(method, path)
        assert route is not None
        label = f"{route.key} ({note})" if note else route.key
        sent = [("Content-Type", "application/json"), *headers]
        sent += [("Authorization", f"Bearer {token}")] if token else []
        if route.iam_auth:  # the print provider, signing with its role's key
            sent.append(("Authorization", f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/20261122/eu-north-1"))
        data = json.dumps(body).encode() if body is not None else b""
        with self.tally.counting(label):
            response = self.driver.gateway.handle(HttpRequest(method, path, sent, data, "198.51.100.9"))
        self.tally.statuses.setdefault(label, set()).add(response.status)
        assert note in REFUSED or response.status < 400, (label, response.status, response.body[:300])
        return response

    def back_date(self, pk: str, attribute: str) -> None:
        """As if the last code went out 31 seconds ago: a resend is due."""
        self.driver.dynamodb.update_item(
            TableName=self.driver.local.stack.refs["ChallengesTable"],
            Key=to_item({"pk": pk}),
            UpdateExpression="SET #sent = :then",
            ExpressionAttributeNames={"#sent": attribute},
            ExpressionAttributeValues=to_item({":then": iso(datetime.now(UTC) - timedelta(seconds=31))}),
        )


def body(response: HttpResponse) -> Any:
    assert response.status < 400, (response.status, response.body[:300])
    return json.loads(response.body) if response.body else None


def letters(walk: Journey, driver: LetterDriver, person: SeededPerson) -> dict[str, str]:
    """A letter ordered, printed (the bench is the print provider) and reported posted: its codes. Then the
    workflow's other paths: an order refused (a letter went within 24 hours), and a letter the print
    provider could not post."""
    assert walk.call("POST", "/v1/pin-letters", {"identity_number": person.identity_number}).status == 202
    job = driver.next_print_job()
    pdf = driver.local.session.client("s3").get_object(Bucket=job["bucket"], Key=job["pdf"])["Body"].read()
    walk.call("POST", f"/v1/print-provider/letters/{job['letter_id']}/status", {"status": "dispatched"})
    assert driver.finished(job["letter_id"])["status"] == "SUCCEEDED"
    age_ledger(driver, person.identity_number, timedelta(minutes=2))  # not the same order sent twice
    again = {"identity_number": person.identity_number}
    assert walk.call("POST", "/v1/pin-letters", again, note="refused").status == 202
    other = driver.person(Category.ADULT).identity_number
    assert walk.call("POST", "/v1/pin-letters", {"identity_number": other}, note="failed").status == 202
    failed = driver.next_print_job()
    status = f"/v1/print-provider/letters/{failed['letter_id']}/status"
    walk.call("POST", status, {"status": "failed", "reason": "paper jam"}, note="failed")
    assert driver.finished(failed["letter_id"])["status"] == "FAILED"
    # an order with an idempotency key (API.md), which a retry of it repeats: its record written and settled
    keyed = {"identity_number": driver.person(Category.ADULT).identity_number}
    key = [("Idempotency-Key", str(uuid.uuid4()))]
    assert walk.call("POST", "/v1/pin-letters", keyed, note="keyed", headers=key).status == 202
    posted = driver.next_print_job()
    walk.call("POST", f"/v1/print-provider/letters/{posted['letter_id']}/status", {"status": "dispatched"})
    assert driver.finished(posted["letter_id"])["status"] == "SUCCEEDED"
    wait_for(driver.executions, lambda runs: all(run["status"] != "RUNNING" for run in runs))  # the refusal's too
    return read_printed_letter(pdf).codes


def enrol(walk: Journey, driver: LetterDriver, person: SeededPerson, codes: dict[str, str]) -> tuple[User, Enrolling]:
    """The person enrolled with the letter's codes, giving both contacts (each sent a code, and at the
    resend both again)."""
    started = body(walk.call("POST", "/v1/enrolments", {"identity_number": person.identity_number}))
    enrolment = f"/v1/enrolments/{started['enrolment_id']}"
    asked = {str(i): codes[str(i)] for i in started["pin_indices"]}
    enrolling = Enrolling(driver, person, codes)
    # both contacts, each sent a code (and a resend: both again)
    completion = {"pin_codes": asked, "password": PASSWORD, "mobile": "93000002", "email": "kari.benk@example.no"}
    body(walk.call("POST", f"{enrolment}/complete", completion))
    walk.back_date(f"enrolment#{started['enrolment_id']}", "codes_sent_at")
    walk.call("POST", f"{enrolment}/resend")
    verification = {
        "mobile_code": enrolling.last_code_to("+4793000002"),
        "email_code": enrolling.last_code_to("kari.benk@example.no"),
    }
    body(walk.call("POST", f"{enrolment}/verify", verification))
    user = User(driver, enrolling, "+4793000002")
    driver.notices_delivered()
    return user, enrolling


def journey(driver: LetterDriver, tally: Tally) -> None:
    walk = Journey(driver, tally)
    walk.call("GET", "/v1/health")
    person = driver.person(Category.ADULT)
    codes = letters(walk, driver, person)
    user, enrolling = enrol(walk, driver, person, codes)
    # login by SMS, with a resend
    login = body(
        walk.call("POST", "/v1/login", {"identity_number": person.identity_number, "password": PASSWORD}, note="sms")
    )
    walk.back_date(f"login#{login['login_id']}", "codes_sent_at")
    walk.call("POST", f"/v1/login/{login['login_id']}/resend")
    verified = walk.call("POST", f"/v1/login/{login['login_id']}/verify", {"code": user.last_sms_code()}, note="sms")
    token = body(verified)["access_token"]
    for path in ("/v1/me", "/v1/me/events", "/v1/me/pin-letters", "/v1/me/contact"):
        body(walk.call("GET", path, token=token))
    # the contact register
    walk.call("PUT", "/v1/me/contact", {"mobile": "93000003"}, token)
    walk.back_date(f"contact-change#{driver.key(person.identity_number)}", "sent_at")
    walk.call("POST", "/v1/me/contact/resend", token=token)
    code = enrolling.last_code_to("+4793000003")
    body(walk.call("POST", "/v1/me/contact/verify", {"channel": "mobile", "code": code}, token))
    user.mobile = "+4793000003"
    body(walk.call("POST", "/v1/me/contact/confirm", token=token))
    body(walk.call("PUT", "/v1/me/reservation", {"reserved": False}, token))
    # an authenticator app, then a login with it and one with a PIN code
    secret = body(walk.call("POST", "/v1/me/totp", token=token))["secret"]
    walk.call("POST", "/v1/me/totp/verify", {"code": pyotp.TOTP(secret).now()}, token)
    for factor in ("totp", "pin"):
        answer = body(
            walk.call(
                "POST",
                "/v1/login",
                {"identity_number": person.identity_number, "password": PASSWORD, "second_factor": factor},
                note=factor,
            )
        )
        code = (
            pyotp.TOTP(secret).at(datetime.now(UTC) + timedelta(seconds=30))
            if factor == "totp"
            else codes[str(answer["pin_index"])]
        )
        # a wrong code first (a failure counted; for a PIN code, a wrong one against its letter), then the right
        wrong = {"code": f"{(int(code) + 1) % 1_000_000:06d}"}
        refused = walk.call("POST", f"/v1/login/{answer['login_id']}/verify", wrong, note=f"{factor}, wrong code")
        assert refused.status == 401
        verified = walk.call("POST", f"/v1/login/{answer['login_id']}/verify", {"code": code}, note=factor)
        token = body(verified)["access_token"]
    walk.call("DELETE", "/v1/me/totp", token=token)
    # a password change, then a reset with the letter and an SMS code, and the letter blocked
    walk.call("PUT", "/v1/me/password", {"current_password": PASSWORD, "new_password": "ny frase for benken"}, token)
    reset = body(walk.call("POST", "/v1/password-resets", {"identity_number": person.identity_number}))
    driver.resets_started.append(reset["reset_id"])  # its code is sent from its queue, by the notifier
    completion = {
        "pin_code": codes[str(reset["pin_index"])],
        "code": user.last_sms_code(),
        "new_password": "enda en ny frase for benken",
    }
    walk.call("POST", f"/v1/password-resets/{reset['reset_id']}/complete", completion)
    user.password = "enda en ny frase for benken"
    token = user.login()
    body(walk.call("POST", "/v1/me/pin-letters/block", token=token))
    walk.call("POST", "/v1/logout", token=token)
    refusals(walk, person.identity_number, user)
    driver.notices_delivered()
    driver.local.functions.by_logical_id["ContactReviewFunction"].invoke({})


# the notes of the login path's refusals (a wrong authenticator code and a wrong PIN code are taken on the way)
REFUSED = ("wrong password", "wrong code", "wrong code, locking", "totp, wrong code", "pin, wrong code")
_LOCKING = REFUSED.index("wrong code, locking")


def refusals(walk: Journey, identity_number: str, user: User) -> None:
    """The login path's refusals: a wrong password, a wrong code, and the wrong code that locks the account
    (the third failure in a row: its failure written with its lock; its notice comes from the lock's event,
    by the events' stream). Last: the person stays locked."""
    wrong = {"identity_number": identity_number, "password": "ikke mitt passord i det hele tatt"}
    assert walk.call("POST", "/v1/login", wrong, note=REFUSED[0]).status == 401
    right = {"identity_number": identity_number, "password": user.password}
    begun = body(walk.call("POST", "/v1/login", right, note="sms"))
    other = f"{(int(user.last_sms_code()) + 1) % 1_000_000:06d}"
    for note in REFUSED[1 : _LOCKING + 1]:  # (not the later notes: their rows are the journey's own)
        assert walk.call("POST", f"/v1/login/{begun['login_id']}/verify", {"code": other}, note=note).status == 401


def aws_calls(counter: CallCounter) -> tuple[list[dict[str, Any]], Counter[str]]:
    """The calls each route and task made on the journey, and every operation called on it."""
    tally = Tally(counter)
    with embedded_stack(counter, tally) as driver:
        # the functions warmed up (their first request reads the pepper), so that what is counted is a warm request's
        warm = enrolled(driver, mobile="93000009")
        warm.call("GET", "/v1/me/contact", token=warm.login())
        driver.notices_delivered()
        tally.invocations.clear()
        tally.statuses.clear()
        journey(driver, tally)
    everything = Counter[str]()
    for invocations in tally.invocations.values():
        for calls in invocations:
            everything.update(calls.operations)
    return tally.rows() + service_integrations(), everything


def service_integrations() -> list[dict[str, Any]]:
    """The workflow's states that Step Functions carries out itself (no function of ours: not counted by
    botocore's events), each one call, read off the state machine."""
    machine = json.loads((Path(__file__).parent.parent / "statemachines" / "pin_letter.asl.json").read_text())
    rows = []
    for name, state in machine["States"].items():
        resource = state.get("Resource", "")
        if state["Type"] == "Task" and not resource.endswith(":lambda:invoke"):
            service, _, action = resource.rsplit(":::", 1)[-1].partition(":")
            called = action.split(".")[0]  # sendMessage.waitForTaskToken: SendMessage, as botocore names it
            operation = f"{service}.{called[:1].upper()}{called[1:]}"
            rows.append(
                {
                    "what": f"workflow state {name} (by Step Functions)",
                    "calls": 1,
                    "operations": {operation: 1},
                    "invocations": 0,
                    "statuses": [],
                    "environment_calls": {},
                }
            )
    return rows
