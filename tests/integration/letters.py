"""Driving PIN letters through the local stack in-process: the tests play the citizen and the print provider."""

from __future__ import annotations

import contextlib
import copy
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from moto.sns.models import sns_backends

from local.aws import ACCOUNT_ID, REGION
from local.gateway import HttpRequest, HttpResponse
from local.population_seed import Category, SeededPerson
from local.print_provider import ACCESS_KEY_ID, read_printed_letter
from local.stack import LETTERS_TABLE, PRINT_QUEUE, LocalStack
from minid import wiring
from minid.adapters.contacts import DynamoDbContactRegister
from minid.adapters.dynamodb import iso, to_item
from minid.adapters.events import DynamoDbSecurityEventLog
from minid.adapters.letters import BY_PERSON_INDEX, DynamoDbPinLetters
from minid.adapters.notices import SqsNoticeQueue
from minid.adapters.sealing import KmsSealer
from minid.adapters.workflow import PrintTimeouts, StepFunctionsLetterWorkflow
from minid.domain.events import SecurityEvent, SecurityEventType
from minid.domain.identity import parse_identity_number
from minid.domain.keys import PersonKey
from minid.domain.letters.model import LetterStatus, PinLetter
from minid.domain.notices import Notice, NoticeKind
from minid.domain.password_reset import code_notice_id
from tests.conftest import ROOT

WORKFLOW = "PinLetterWorkflow"
T = TypeVar("T")


@dataclass
class LetterDriver:
    local: LocalStack
    used: set[str] = field(default_factory=set)
    resets_started: list[str] = field(default_factory=list)  # whose codes the notifier may still be sending

    def __post_init__(self) -> None:
        self.gateway = self.local.gateway()
        self.sqs = self.local.session.client("sqs")
        self.sfn = self.local.session.client("stepfunctions")
        self.dynamodb = self.local.session.client("dynamodb")
        refs = self.local.stack.refs
        self.letters = DynamoDbPinLetters(self.dynamodb, refs[LETTERS_TABLE], refs["SecurityEventsTable"])

    # ------------------------------------------------------------------ persons
    def person(self, category: Category) -> SeededPerson:
        """A person of the category no other step of this test has used."""
        person = next(p for p in self.local.population if p.category is category and p.identity_number not in self.used)
        self.used.add(person.identity_number)
        return person

    def key(self, identity_number: str) -> PersonKey:
        number = parse_identity_number(identity_number, allow_synthetic=True, today=self.local.today)
        return self.local.keyer.person_key(number)

    def add_contacts(
        self, identity_number: str, *, mobile: str | None = None, email: str | None = None, language: str = "nb"
    ) -> None:
        """A verified contact register record, as enrolment writes it."""
        now = iso(datetime.now(UTC))
        item = {
            "pk": self.key(identity_number),
            "mobile": mobile,
            "mobile_verified_at": now if mobile else None,
            "email": email,
            "email_verified_at": now if email else None,
            "language": language,
            "reserved": False,
            "updated_at": now,
        }
        self.dynamodb.put_item(TableName=self.local.stack.refs["ContactRegisterTable"], Item=to_item(item))
        assert DynamoDbContactRegister(self.dynamodb, self.local.stack.refs["ContactRegisterTable"]).find(
            self.key(identity_number)
        )

    # ------------------------------------------------------------------ the citizen
    def order(self, identity_number: Any, idempotency_key: str | None = None) -> HttpResponse:
        headers = [("Content-Type", "application/json")]
        if idempotency_key is not None:
            headers.append(("Idempotency-Key", idempotency_key))
        body = json.dumps({"identity_number": identity_number}).encode()
        return self.gateway.handle(HttpRequest("POST", "/v1/pin-letters", headers, body))

    def post(self, path: str, body: Any = None, headers: list[tuple[str, str]] | None = None) -> HttpResponse:
        data = json.dumps(body).encode() if body is not None else b""
        return self.gateway.handle(
            HttpRequest("POST", path, [("Content-Type", "application/json"), *(headers or [])], data)
        )

    def letters_of(self, identity_number: str) -> list[PinLetter]:
        return self.letters.letters_of(self.key(identity_number))

    def only_letter(self, identity_number: str) -> PinLetter:
        letters = self.letters_of(identity_number)
        assert len(letters) == 1, letters
        return letters[0]

    # ------------------------------------------------------------------ the print provider
    def next_print_job(self, timeout: float = 15) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        queue = self.local.stack.refs[PRINT_QUEUE]
        while time.monotonic() < deadline:
            for message in self.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1).get("Messages", []):
                self.sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
                job: dict[str, Any] = json.loads(message["Body"])
                return job
            time.sleep(0.05)
        raise AssertionError("no print job came")

    def no_print_job(self, wait: float = 1.0) -> bool:
        time.sleep(wait)
        queue = self.local.stack.refs[PRINT_QUEUE]
        return not self.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages")

    def report(
        self, letter_id: str, status: str, reason: str | None = None, signer: str | None = ACCESS_KEY_ID
    ) -> HttpResponse:
        headers = [("Content-Type", "application/json")]
        if signer:
            headers.append(("Authorization", f"AWS4-HMAC-SHA256 Credential={signer}/20261122/eu-north-1"))
        body: dict[str, Any] = {"status": status} | ({"reason": reason} if reason else {})
        path = f"/v1/print-provider/letters/{letter_id}/status"
        return self.gateway.handle(HttpRequest("POST", path, headers, json.dumps(body).encode()))

    # ------------------------------------------------------------------ the workflow
    def execution_arn(self, letter_id: str) -> str:
        machine = self.local.stack.refs[WORKFLOW]
        return f"{machine.replace(':stateMachine:', ':execution:')}:{letter_id}"

    def executions(self) -> list[dict[str, Any]]:
        executions: Any = self.sfn.list_executions(stateMachineArn=self.local.stack.refs[WORKFLOW])["executions"]
        return list(executions)

    def finished(self, letter_id: str, timeout: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            execution: dict[str, Any] = dict(self.sfn.describe_execution(executionArn=self.execution_arn(letter_id)))
            if execution["status"] != "RUNNING":
                return execution
            time.sleep(0.05)
        raise AssertionError(f"the workflow of {letter_id} did not finish")

    def history(self, letter_id: str) -> list[dict[str, Any]]:
        pages = self.sfn.get_paginator("get_execution_history").paginate(executionArn=self.execution_arn(letter_id))
        events: Any = [event for page in pages for event in page["events"]]
        return list(events)

    def notices_delivered(self, timeout: float = 20, queue_name: str = "NoticeQueue") -> None:
        """Wait until the notice queue (or the code or the reminder queue) is empty: every notice queued on it
        so far has been delivered, or given up. A lock's notice is queued from the security events' stream:
        the stream is caught up with first."""
        if queue_name == "NoticeQueue":
            self.local.streams_caught_up(timeout)
        queue = self.local.stack.refs[queue_name]
        deadline = time.monotonic() + timeout
        while not queue_empty(self.sqs, queue):
            assert time.monotonic() < deadline, "notices are still waiting"
            time.sleep(0.05)

    def reset_codes_sent(self, timeout: float = 10) -> None:
        """Wait until the notifier has sent the code of each password reset started through a test's routes
        (it sends them from the code queue), or been refused on every channel the reset has (the e-mail is
        sent only after SNS refuses the number); a decoy's code goes to no one. A code neither sent nor
        refused in `timeout` fails the test: a wait that ran out silently would hide a notice that never
        comes (as when its ledger's key changes)."""
        table = self.local.stack.refs["ChallengesTable"]
        deadline = time.monotonic() + timeout
        while self.resets_started:
            reset_id = self.resets_started[0]
            reset = self.dynamodb.get_item(TableName=table, Key={"pk": {"S": f"reset#{reset_id}"}}).get("Item", {})
            notice_id = code_notice_id(self.local.keyer, reset_id)
            states = [
                self.dynamodb.get_item(TableName=table, Key={"pk": {"S": f"notice#{notice_id}#{channel}"}})
                .get("Item", {})
                .get("state", {})
                .get("S")
                for channel in ("sms", "email")
            ]
            channels = [
                state
                for state, at in zip(states, ("mobile_verified_at", "email_verified_at"), strict=True)
                if at in reset
            ]
            refused = bool(channels) and all(state == "refused" for state in channels)
            if "S" not in reset.get("code_hash", {}) or "sent" in states or refused:  # a decoy: none
                self.resets_started.pop(0)
            elif time.monotonic() < deadline:
                time.sleep(0.02)
            else:
                self.resets_started.clear()
                raise AssertionError(f"the code of reset {reset_id} was neither sent nor refused")

    def stop_running(self) -> None:
        """Stop what still runs, so that no execution outlives the test's embedded AWS."""
        for _ in range(50):
            running = [e for e in self.executions() if e["status"] == "RUNNING"]
            if not running:
                return
            for execution in running:
                with contextlib.suppress(AttributeError):  # moto: the execution's worker has not started yet
                    self.sfn.stop_execution(executionArn=execution["executionArn"])
            time.sleep(0.05)


# ---------------------------------------------------------------------- steps the tests share
def state_function(state: str) -> str:
    """The logical id of the function the PIN-letter workflow runs `state` in: its FunctionName is
    "${<logical id>Arn}", which the template's DefinitionSubstitutions fill in."""
    definition = json.loads((ROOT / "statemachines" / "pin_letter.asl.json").read_text())
    match = re.fullmatch(r"\$\{(\w+)Arn\}", definition["States"][state]["Parameters"]["FunctionName"])
    assert match, state
    return match[1]


def posted(driver: LetterDriver, identity_number: str) -> tuple[PinLetter, dict[str, str]]:
    """Order a letter, print it, report it posted; the letter and the codes read off the PDF."""
    assert driver.order(identity_number).status == 202
    job = driver.next_print_job()
    pdf = driver.local.session.client("s3").get_object(Bucket=job["bucket"], Key=job["pdf"])["Body"].read()
    assert driver.report(job["letter_id"], "dispatched").status == 204
    assert driver.finished(job["letter_id"])["status"] == "SUCCEEDED"
    letter = driver.letters.get(job["letter_id"])
    assert letter is not None
    return letter, read_printed_letter(pdf).codes


def documents_of(driver: LetterDriver, letter_id: str) -> list[str]:
    """The names of the letter's print documents in the bucket."""
    objects = driver.local.session.client("s3").list_objects_v2(
        Bucket=driver.local.stack.refs["PrintDocumentsBucket"], Prefix=f"letters/{letter_id}/"
    )
    return sorted(o["Key"].rsplit("/", 1)[1] for o in objects.get("Contents", []))


def notice_queue(driver: LetterDriver, queue: str = "NoticeQueue") -> SqsNoticeQueue:
    """The notice queue (or the reminders', or the codes') as the functions queue to it (recipients sealed
    under the data key)."""
    session, refs = driver.local.session, driver.local.stack.refs
    return SqsNoticeQueue(session.client("sqs"), refs[queue], KmsSealer(session.client("kms"), refs["DataKey"]))


def _windows(window_seconds: int) -> tuple[int, int, int]:
    start = int(datetime.now(UTC).timestamp()) // window_seconds * window_seconds
    return start - window_seconds, start, start + window_seconds


def in_one_window(window_seconds: int, needed_seconds: float) -> None:
    """Wait, if need be, until the limits' current window has `needed_seconds` left.

    The client limits count in fixed windows (minid.domain.rate_limits): requests that straddle a window's
    end are counted in two, and a test that expects its limit to be reached would then see it not reached.
    """
    left = window_seconds - time.time() % window_seconds
    if left < needed_seconds:
        time.sleep(left + 0.1)


def _counter(driver: LetterDriver, name: str, who: str, window: int) -> str:
    """A rate counter's key: the limit's name, the keyed hash of the client (or person) and the window."""
    return f"rate#{name}#{driver.local.keyer.client_key(who)}#{window}"


def counted_hits(driver: LetterDriver, name: str, who: str, window_seconds: int) -> int:
    """The hits counted for `who` in the windows around now (a test's requests may straddle two)."""
    table = driver.local.stack.refs["ChallengesTable"]
    total = 0
    for window in _windows(window_seconds):
        key = {"pk": {"S": _counter(driver, name, who, window)}}
        total += int(driver.dynamodb.get_item(TableName=table, Key=key).get("Item", {}).get("hits", {}).get("N", 0))
    return total


def fill_counters(driver: LetterDriver, name: str, who: str, window_seconds: int, hits: int) -> None:
    """The counters of this window and the next full: the next request is refused, whenever it comes."""
    table = driver.local.stack.refs["ChallengesTable"]
    for window in _windows(window_seconds)[1:]:
        item = {"pk": _counter(driver, name, who, window), "hits": hits, "expires_at": window + 2 * window_seconds}
        driver.dynamodb.put_item(TableName=table, Item=to_item(item))


def clear_counters(driver: LetterDriver, name: str, who: str, window_seconds: int) -> None:
    """The counters around now taken away: as if their windows had passed."""
    table = driver.local.stack.refs["ChallengesTable"]
    for window in _windows(window_seconds):
        driver.dynamodb.delete_item(TableName=table, Key={"pk": {"S": _counter(driver, name, who, window)}})


def registered_dead(driver: LetterDriver, identity_number: str) -> None:
    """The person dead today, in the population register."""
    _registered(driver, identity_number, "deceased", deceased_on=date.today().isoformat())


def registered_ceased(driver: LetterDriver, identity_number: str) -> None:
    """The person's number replaced by another today (a D-number by a fødselsnummer), in the register."""
    _registered(driver, identity_number, "ceased")


def taken_out_of_register(driver: LetterDriver, identity_number: str) -> None:
    """The person no longer in the population register at all (an entry withdrawn)."""
    driver.dynamodb.delete_item(
        TableName=driver.local.stack.refs["PopulationRegisterTable"], Key={"pk": {"S": driver.key(identity_number)}}
    )


def _registered(driver: LetterDriver, identity_number: str, status: str, **fields: str) -> None:
    """The person's status in the population register now `status`, with `fields` set as well."""
    sets = ", ".join(["#status = :status", *(f"{name} = :{name}" for name in fields)])
    driver.dynamodb.update_item(
        TableName=driver.local.stack.refs["PopulationRegisterTable"],
        Key={"pk": {"S": driver.key(identity_number)}},
        UpdateExpression=f"SET {sets}",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues=to_item({":status": status, **{f":{name}": v for name, v in fields.items()}}),
    )


def security_events(driver: LetterDriver) -> DynamoDbSecurityEventLog:
    return DynamoDbSecurityEventLog(driver.dynamodb, driver.local.stack.refs["SecurityEventsTable"])


def password_changed(driver: LetterDriver, notice_id: str, person: PersonKey) -> Notice:
    """The notice of a password change whose event is written: one a test delivers, as MinID queues it
    (with its change's event as its proof: PROVEN_BY)."""
    changed = SecurityEvent(SecurityEventType.PASSWORD_CHANGED, datetime.now(UTC), notice_id)
    security_events(driver).record(person, changed)
    return Notice(notice_id, NoticeKind.PASSWORD_CHANGED, person, proof=changed)


def age_ledger(driver: LetterDriver, identity_number: str, by: timedelta) -> None:
    """Move the person's recorded orders back in time (when each was accepted, and placed), as if the
    days had passed."""
    key = to_item({"pk": f"person#{driver.key(identity_number)}", "sk": "letters"})
    table = driver.local.stack.refs["PinLettersTable"]
    item = driver.dynamodb.get_item(TableName=table, Key=key)["Item"]
    aged = {
        name: {k: iso(datetime.fromisoformat(v["S"]) - by) for k, v in item.get(name, {"M": {}})["M"].items()}
        for name in ("orders", "placed")
    }
    driver.dynamodb.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET orders = :orders, placed = :placed",
        ExpressionAttributeValues=to_item({":orders": aged["orders"], ":placed": aged["placed"]}),
    )


def start_with_timeouts(driver: LetterDriver, identity_number: str, timeouts: PrintTimeouts) -> str:
    """An order (as the order route records it) whose workflow waits for the print provider no longer
    than `timeouts` say, instead of the deployed days."""
    letter_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    order = PinLetter(letter_id, driver.key(identity_number), LetterStatus.ORDERED, now)
    driver.letters.create_order(order, now + timedelta(days=1))
    StepFunctionsLetterWorkflow(driver.sfn, driver.local.stack.refs[WORKFLOW], timeouts).start(letter_id)
    return letter_id


def assert_reported_not_posted(driver: LetterDriver, letter_id: str) -> None:
    topic = driver.local.stack.refs["LettersNotPostedTopic"]
    notifications = sns_backends[ACCOUNT_ID][REGION].topics[topic].sent_notifications
    assert any(letter_id in message for _, message, *_ in notifications)


@contextlib.contextmanager
def before_first_aws_call(
    operation: str,
    meanwhile: Callable[[], object],
    where: Callable[[dict[str, Any]], bool] = lambda _: True,
    after: Callable[[], object] | None = None,
) -> Iterator[list[str]]:
    """Clients the functions' session makes within (`wiring.login(os.environ)`, say) do `meanwhile` just
    before their first `operation` call ("dynamodb.TransactWriteItems") whose parameters are `where` (and
    `after` just after it): what another request may do between a request's reads and its write, at the
    AWS boundary. (The stack's functions made their clients before: the request `meanwhile` makes through
    them is not held up.) Yields how each such call went, in order: "made", or AWS's error code."""
    done: list[bool] = []
    outcomes: list[str] = []

    def before(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if where(params):
            context["watched"] = True
            if not done:
                done.append(True)
                meanwhile()

    def answered(parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if context.get("watched"):
            outcomes.append(parsed.get("Error", {}).get("Code") or "made")
            if after is not None and len(outcomes) == 1:
                after()

    with on_functions_clients((f"before-parameter-build.{operation}", before), (f"after-call.{operation}", answered)):
        yield outcomes
    assert done, f"no {operation} call was made"


@contextlib.contextmanager
def calls_made(operation: str, where: Callable[[dict[str, Any]], bool]) -> Iterator[list[str]]:
    """How each `operation` call ("dynamodb.UpdateItem") whose parameters are `where` went, of those the
    functions' clients made within and sent: "made", or AWS's error code (one refused before it was sent,
    OutOfTime say, is not among them)."""
    key = f"made-{id(where)}"  # its own mark on a call's context: another watcher's is not taken for it
    outcomes: list[str] = []

    def building(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context[key] = where(params)

    def answered(parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if context.get(key):
            outcomes.append(parsed.get("Error", {}).get("Code") or "made")

    with on_functions_clients((f"before-parameter-build.{operation}", building), (f"after-call.{operation}", answered)):
        yield outcomes


@contextlib.contextmanager
def on_functions_clients(*handlers: tuple[str, Callable[..., None]]) -> Iterator[None]:
    """botocore event handlers on the clients the functions' session makes within (each client takes the
    session's handlers as it is made): the AWS boundary, where a test makes a race or a lagging answer."""
    session: Any = wiring.session()  # botocore's stubs type a handler as taking keywords only
    for event, handler in handlers:
        session.register(event, handler)
    try:
        yield
    finally:
        for event, handler in handlers:
            session.unregister(event, handler)


def transaction_updating(expression: str) -> Callable[[dict[str, Any]], bool]:
    """A TransactWriteItems with an Update whose UpdateExpression holds `expression`: a request's own write,
    told from another's (a function starting meanwhile makes its clients with the hook too)."""
    return lambda params: any(
        expression in item.get("Update", {}).get("UpdateExpression", "") for item in params["TransactItems"]
    )


def transaction_putting(table: str) -> Callable[[dict[str, Any]], bool]:
    """A TransactWriteItems with a Put into `table`."""
    return lambda params: any(item.get("Put", {}).get("TableName") == table for item in params["TransactItems"])


QUEUE_COUNTS: Any = [
    "ApproximateNumberOfMessagesDelayed",
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
]


def queue_empty(sqs: Any, queue_url: str) -> bool:
    """No message in the queue, delayed, waiting or in flight, at two readings running.

    moto takes the counts asked in one call each at a moment of its own: a message whose time runs out
    between two of them (its delay, or, in flight, its visibility: a retry coming back) can be counted in
    none. So a test once missed a notice: queued before its change was written, it was put off for a second
    and came back during a reading (in 40 tries, reading in a tight loop as a message's time ran out, 4 such
    readings). A message moves by time only into the waiting count, where it stays until a call receives it,
    and its next timed move is a second or more later: one that one reading missed, the next counts, unless
    it was deleted in between (delivered, or given up on)."""
    for _ in range(2):
        counts = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=QUEUE_COUNTS)["Attributes"]
        if any(int(count) for count in counts.values()):
            return False
    return True


def wait_for(read: Callable[[], T], done: Callable[[T], object], timeout: float = 10) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = read()
        if done(value):
            return value
        time.sleep(0.05)
    raise AssertionError(f"not done in {timeout} s: {value}")


_LAGGING = "minid_tests_index_lagging"  # a query of the person's letters that answers as the index lagging


@contextlib.contextmanager
def index_lagging(driver: LetterDriver, person: PersonKey, *, reads: int | None = None) -> Iterator[None]:
    """The person's letters, as the by-person index lists them to clients the functions' session makes
    within (`wiring.pin_letters(os.environ)`), as they were on entry: for the first `reads` queries of it
    (for every one, if None). The index is eventually consistent, and may not show a write of a few
    milliseconds ago (moto's always does: the lag is made here, at the AWS boundary, in DynamoDB's answer)."""
    query: dict[str, Any] = {
        "TableName": driver.local.stack.refs[LETTERS_TABLE],
        "IndexName": BY_PERSON_INDEX,
        "KeyConditionExpression": "person = :person",
        "ExpressionAttributeValues": to_item({":person": person}),
        "ScanIndexForward": False,
    }
    listed = driver.dynamodb.query(**query)["Items"]
    lagged: list[bool] = []

    def listing(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if (
            params.get("IndexName") == BY_PERSON_INDEX
            and params.get("ExpressionAttributeValues") == query["ExpressionAttributeValues"]
        ):
            context[_LAGGING] = reads is None or len(lagged) < reads
            lagged.append(True)

    def answered(parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if context.get(_LAGGING) and "Items" in parsed:
            parsed["Items"], parsed["Count"] = copy.deepcopy(listed), len(listed)

    with on_functions_clients(
        ("before-parameter-build.dynamodb.Query", listing), ("after-call.dynamodb.Query", answered)
    ):
        yield
    assert lagged, "the person's letters were not listed"
