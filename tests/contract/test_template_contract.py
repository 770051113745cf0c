"""template.yaml, the handlers and events/ agree: every route reaches a real handler route and back."""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from functions.letter_workflow.app import CLEANUP_KEPT_SECONDS
from functions.notifier.app import RECORDING_KEPT_SECONDS
from local import print_provider
from local.aws import embedded_aws
from local.gateway import Gateway, HttpRequest
from local.openapi import SECURITY_SCHEMES, build_openapi, http_functions, load_resolver
from local.stack import LOCAL_ENVIRONMENT, LocalStack
from local.template import DEFAULT_ROUTE, FunctionSpec, Route, Template
from minid import wiring
from minid.api import NO_SUCH_ROUTE
from minid.api.resolver import EXEMPT_KEPT_SECONDS
from minid.attempts import CONNECT_SECONDS, READ_SECONDS
from minid.deadline import AFTER_EXEMPT_SECONDS, MARGIN_SECONDS
from minid.domain.letters.workflow import TOLD_REFUSALS
from minid.domain.notices import RETRY_MOST_SECONDS, retry_after
from minid.wiring import RETRIES
from tests.conftest import EVENTS, ROOT
from tests.integration.letters import state_function

TEMPLATE = Template.load()
ROUTES = [r for r in TEMPLATE.routes() if r.path != DEFAULT_ROUTE]
DEPLOYED_CODE = [ROOT / "functions", ROOT / "layers"]


@pytest.fixture(scope="module")
def local() -> Iterator[LocalStack]:
    with embedded_aws() as session:
        started = LocalStack.start(session, print_delay_seconds=None)
        yield started
        started.stop()


@pytest.fixture(scope="module")
def gateway(local: LocalStack) -> Gateway:
    return local.gateway()


@pytest.mark.parametrize("spec", TEMPLATE.functions(), ids=lambda spec: spec.logical_id)
def test_each_function_is_built_from_its_own_environment_alone(local: LocalStack, spec: FunctionSpec) -> None:
    """The local stack sets every function's variables in its one process; Lambda gives each function
    its own (the template's Globals, and its own: a few are one function's). A function whose settings read
    a variable only another function is given would work here, and fail at every request on AWS (its
    services built at the first): each is built here from its own alone (and the local stack's own)."""
    own = LOCAL_ENVIRONMENT | local.stack.function_environment(spec)
    handler = (spec.code_dir / f"{spec.handler.rpartition('.')[0]}.py").read_text()
    builders = sorted(set(re.findall(r"wiring\.(\w+)\(os\.environ", handler)))
    assert builders or spec.logical_id == "HealthFunction"  # (the health check builds nothing)
    for name in builders:
        getattr(wiring, name)(own)


def _concrete(route: Route) -> str:
    return re.sub(r"\{[^}]+\}", "00000000-0000-4000-8000-000000000000", route.path)


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.key)
def test_every_route_reaches_its_handler_route(gateway: Gateway, route: Route) -> None:
    method = "POST" if route.method == "ANY" else route.method
    headers = [("Content-Type", "application/json"), ("Host", "localhost")]
    if route.iam_auth:
        # as the print provider signs (its key id and a credential scope), so that the gateway lets it in
        scope = "20260101/eu-north-1/execute-api/aws4_request"
        headers.append(("Authorization", f"AWS4-HMAC-SHA256 Credential={print_provider.ACCESS_KEY_ID}/{scope}"))
    response = gateway.handle(HttpRequest(method, _concrete(route), headers, b"{}"))

    assert response.status < 500, response.body
    assert response.status != 403, f"{route.key}: the gateway refused it before its handler ran"
    if response.status == 404:
        assert json.loads(response.body)["detail"] != NO_SUCH_ROUTE, f"{route.key} is not a route of its handler"


def test_an_unknown_route_reaches_the_default_route(gateway: Gateway) -> None:
    response = gateway.handle(HttpRequest("PATCH", "/v1/nothing/here", [("Host", "localhost")]))
    assert response.status == 404
    assert dict(response.headers)["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize("spec", http_functions(TEMPLATE), ids=lambda s: s.logical_id)
def test_each_handler_has_exactly_its_template_routes(spec: FunctionSpec) -> None:
    paths = load_resolver(spec).get_openapi_schema(security_schemes=SECURITY_SCHEMES).paths or {}
    handled = {f"{method.upper()} {path}" for path, item in paths.items() for method in _methods(item)}
    assert handled == {r.key for r in ROUTES if r.function == spec.logical_id}


def _methods(path_item: Any) -> list[str]:
    return [m for m in ("get", "put", "post", "delete", "patch") if getattr(path_item, m, None) is not None]


def test_the_openapi_document_has_every_route() -> None:
    documented = {
        f"{method.upper()} {path}"
        for path, operations in build_openapi(TEMPLATE)["paths"].items()
        for method in operations
    }
    assert documented == {r.key for r in ROUTES}


def test_every_function_has_sample_events_and_tests() -> None:
    test_sources = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py"))
    for spec in TEMPLATE.functions():
        folder = spec.code_dir.name
        events = sorted((EVENTS / folder).glob("*.json"))
        assert events, f"events/{folder}/ has no sample event for {spec.logical_id}"
        assert f'"{folder}/' in test_sources or f"functions.{folder}." in test_sources, f"no tests use {folder}"


def test_sample_events_are_payload_2_events_of_routes_the_function_has() -> None:
    keys_by_folder: dict[str, set[str]] = {}
    for route in TEMPLATE.routes():
        folder = next(s.code_dir.name for s in TEMPLATE.functions() if s.logical_id == route.function)
        keys_by_folder.setdefault(folder, set()).add(route.key)
    for path in EVENTS.rglob("*.json"):
        event = json.loads(path.read_text())
        if event.get("version") != "2.0":
            continue  # not an HTTP API event (a workflow task's input, say)
        assert event["routeKey"] in keys_by_folder[path.parent.name], path
        assert event["requestContext"]["http"]["method"] in {"GET", "POST", "PUT", "DELETE", "PATCH"}


def test_functions_run_python_3_13_on_arm64() -> None:
    for spec in TEMPLATE.functions():
        assert spec.properties["Runtime"] == "python3.13"
        assert spec.properties["Architectures"] == ["arm64"]
        assert spec.handler == "app.lambda_handler"


def _imports(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def test_nothing_deployed_imports_the_local_stack_or_the_tests() -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for folder in DEPLOYED_CODE
        for path in folder.rglob("*.py")
        for name in _imports(path)
        if name.split(".")[0] in {"local", "tests", "moto"}
    ]
    assert offenders == []


def test_handlers_hold_no_aws_calls() -> None:
    """Thin handlers: boto3 lives in the adapters, never in functions/*/app.py."""
    for path in (ROOT / "functions").rglob("app.py"):
        assert not [n for n in _imports(path) if n.split(".")[0] in {"boto3", "botocore"}], path


# What Lambda answers for an invocation that did not finish: the runtime crashed (out of memory, say),
# the function ran out of time, or the invoke itself timed out. Every task is idempotent: run again.
UNFINISHED_INVOCATION = {"Lambda.Unknown", "Sandbox.Timedout", "Lambda.ClientExecutionTimeoutException"}


def test_every_lambda_task_of_the_workflow_runs_again_after_an_invocation_that_did_not_finish() -> None:
    """Not retried, one crash of ActivateLetter would mark a letter in the post failed, its codes dead."""
    definition = json.loads((ROOT / "statemachines" / "pin_letter.asl.json").read_text())
    tasks = {n: s for n, s in definition["States"].items() if s.get("Resource", "").endswith(":lambda:invoke")}
    assert len(tasks) >= 6
    for name, state in tasks.items():
        retried = {error for retry in state.get("Retry", []) for error in retry["ErrorEquals"]}
        assert "States.ALL" in retried or retried >= UNFINISHED_INVOCATION, name


def test_a_posted_letter_s_activation_outlasts_an_hour_of_throttling() -> None:
    """The letter is in the post when ActivateLetter runs: given up after minutes of Lambda throttling or
    AWS trouble, it would be marked failed and its codes never work. Its retries wait over an hour, nearly
    always: each wait is at most MaxDelaySeconds, and full jitter draws it between none and that (on
    average half; the sum of some 44 such draws lies within a few hundred seconds of its mean)."""
    mean, spread, longest = _transient_waits("ActivateLetter")
    assert mean - 3 * spread >= 3600
    assert longest <= 300  # and none so long that a brief outage leaves the letter waiting for long


@pytest.mark.parametrize("state", ["MarkFailed", "MarkFailedBeforePrinting"])
def test_a_failed_letter_is_marked_failed_through_an_hour_of_throttling(state: str) -> None:
    """Marking a letter failed frees its place in the quota and tells the person: given up after minutes
    of the same throttling that failed the letter, the letter stayed ordered (an accepted order never
    expires), holding the place for 30 days, and the person was never told. A failure of its own (a bug)
    is not waited on so long: the operators are told."""
    mean, spread, longest = _transient_waits(state)
    assert mean - 3 * spread >= 3600
    assert longest <= 300
    definition = json.loads((ROOT / "statemachines" / "pin_letter.asl.json").read_text())
    assert definition["States"][state]["Next"] == "ReportNotPosted"
    assert definition["States"][state]["Parameters"]["Payload"]["task"] == "mark-failed"
    assert definition["States"][state]["Retry"][-1] == {
        "ErrorEquals": ["States.ALL"],
        "IntervalSeconds": 1,
        "BackoffRate": 2,
        "MaxAttempts": 8,
        "JitterStrategy": "FULL",
    }


@pytest.mark.parametrize("task", ["ValidateRecipient", "PrepareLetter", "NotifyRefused", "NotifyPosted"])
def test_checking_preparing_and_telling_of_a_letter_wait_out_minutes_of_throttling(task: str) -> None:
    """A burst of orders past the workflow's reserved concurrency (orders in someone's name past their
    quota, say), or DynamoDB, S3 or KMS throttling for a few minutes: waited out (some five minutes, on
    average), not the letter failed, the operators paged, and the person not told of a refused order."""
    mean, _, longest = _transient_waits(task)
    assert mean >= 240
    assert longest <= 60  # soon again once it is over


def test_the_hand_over_to_the_printer_waits_out_minutes_of_sqs_trouble() -> None:
    """The letter is prepared (its codes made, its document stored) when it is handed over: given up after
    seconds of SQS or KMS throttling, it would be marked failed, the operators paged and the person told to
    order again. Its retries wait as long as the other tasks'."""
    mean, _, longest = _transient_waits("SendToPrintProvider", {"SQS.AmazonSQSException", "SQS.SdkClientException"})
    assert mean >= 240
    assert longest <= 60


def _transient_waits(
    task: str,
    transient: frozenset[str] | set[str] = frozenset({"Lambda.TooManyRequestsException", "DependencyUnavailable"}),
) -> tuple[float, float, float]:
    """The task's retries of throttling and AWS trouble: the mean of their waits in all, its deviation, and
    the longest wait. Each wait is at most MaxDelaySeconds, and full jitter draws it between none and that
    (on average half; the sum of many such draws lies within a few deviations of its mean)."""
    definition = json.loads((ROOT / "statemachines" / "pin_letter.asl.json").read_text())
    retry = definition["States"][task]["Retry"][0]
    assert transient <= set(retry["ErrorEquals"])
    caps = [
        min(retry["IntervalSeconds"] * retry["BackoffRate"] ** n, retry.get("MaxDelaySeconds", float("inf")))
        for n in range(retry["MaxAttempts"])
    ]
    jittered = retry.get("JitterStrategy", "NONE") == "FULL"
    mean = sum(caps) / 2 if jittered else sum(caps)
    spread = math.sqrt(sum(cap**2 / 12 for cap in caps)) if jittered else 0.0  # a uniform draw's deviation
    return mean, spread, max(caps)


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _next_states(state: dict[str, Any]) -> set[str]:
    targets = [state.get("Next"), state.get("Default")]
    targets += [c["Next"] for c in state.get("Choices", []) + state.get("Catch", [])]
    return {t for t in targets if t}


def _reached(states: dict[str, Any], start: str, stop_at: str | None = None) -> set[str]:
    """The states a run goes through from `start` (`start` too), not going on past `stop_at`."""
    reached, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name not in reached:
            reached.add(name)
            todo += [] if name == stop_at else sorted(_next_states(states[name]))
    return reached


def test_the_refusals_the_workflow_tells_are_those_the_code_takes_for_told() -> None:
    """NotifyRefused tells a refusal in the workflow; a letter failed after its check refused it (the
    check's task failing after its write) is told in MarkFailedBeforePrinting instead: the same refusals."""
    definition = json.loads((ROOT / "statemachines" / "pin_letter.asl.json").read_text())
    choices = definition["States"]["IsRecipientAccepted"]["Choices"]
    told = {c["StringEquals"] for c in choices if c["Next"] == "NotifyRefused"}
    assert told == {outcome.value for outcome in TOLD_REFUSALS}


def test_a_letter_in_the_post_is_activated_in_a_function_that_no_order_s_checks_run_in() -> None:
    """Concurrency is reserved per function. Were a posted letter activated in the function that checks
    every order, a flood of orders (past the per-client limits, from many addresses) could fill its
    reservation and throttle the activation past its hour and a half of retries: a letter in the post
    failed, its codes dead. What runs once the printer has the letter runs in a function of its own, with
    a reservation of its own; what runs before, a failure there too, in the other. The placeholders are
    filled in with those functions; the state machine may invoke both, and their throttling is alarmed."""
    definition = json.loads((ROOT / "statemachines" / "pin_letter.asl.json").read_text())
    states = definition["States"]

    invoked = {n for n, s in states.items() if s.get("Resource", "").endswith(":lambda:invoke")}
    hand_over = "SendToPrintProvider"
    posted = _reached(states, hand_over) - {hand_over}
    ordered = _reached(states, definition["StartAt"], stop_at=hand_over) - {hand_over}  # a failure there too
    assert {"ActivateLetter", "NotifyPosted", "MarkFailed"} <= posted & invoked
    assert {"ValidateRecipient", "PrepareLetter", "NotifyRefused", "MarkFailedBeforePrinting"} <= ordered & invoked
    activation = {state_function(n) for n in posted & invoked}
    checks = {state_function(n) for n in ordered & invoked}
    assert activation == {"LetterActivationFunction"}
    assert checks == {"LetterWorkflowFunction"}
    substitutions = TEMPLATE.resources["PinLetterWorkflow"]["Properties"]["DefinitionSubstitutions"]
    for function in activation | checks:
        assert substitutions[f"{function}Arn"] == {"Fn::GetAtt": [function, "Arn"]}

    resources = TEMPLATE.resources
    reserved = resources["LetterWorkflowFunction"]["Properties"]["ReservedConcurrentExecutions"]
    assert reserved["Fn::If"][1] == {"Ref": "WorkflowReservedConcurrency"}
    assert resources["LetterActivationFunction"]["Properties"]["ReservedConcurrentExecutions"] == reserved
    (tasks,) = [
        s
        for p in resources["PinLetterWorkflowRole"]["Properties"]["Policies"]
        for s in p["PolicyDocument"]["Statement"]
        if s["Action"] == "lambda:InvokeFunction"
    ]
    assert tasks["Resource"] == [
        {"Fn::GetAtt": [f, "Arn"]} for f in ("LetterWorkflowFunction", "LetterActivationFunction")
    ]
    throttles = resources["AsyncFunctionsThrottledAlarm"]["Properties"]["Metrics"]
    alarmed = [d["Value"] for m in throttles if "MetricStat" in m for d in m["MetricStat"]["Metric"]["Dimensions"]]
    assert {"Ref": "LetterActivationFunction"} in alarmed
    assert {"Ref": "LetterWorkflowFunction"} in alarmed


def test_the_daily_reminders_never_hold_up_the_notices() -> None:
    """A morning's thousands of reminders (more after missed days) go to a queue of their own, which the
    notifier takes fewer at a time than the notices: a notice (a lock, a contact changed, a password reset:
    the person's only sign of it, maybe) never waits behind them. The review queues on that queue alone."""
    resources = TEMPLATE.resources
    events = resources["NotifierFunction"]["Properties"]["Events"].values()
    taken = {e["Properties"]["Queue"]["Fn::GetAtt"][0]: e["Properties"] for e in events if e["Type"] == "SQS"}
    assert set(taken) == {"NoticeQueue", "CodeQueue", "ReminderQueue"}
    reminders, notices = taken["ReminderQueue"]["ScalingConfig"], taken["NoticeQueue"]["ScalingConfig"]
    assert reminders["MaximumConcurrency"] < notices["MaximumConcurrency"]
    # together no more than the notices alone were allowed before: the SMS and e-mail send rates' share
    assert reminders["MaximumConcurrency"] + notices["MaximumConcurrency"] <= 5
    sending = {
        (role_id, resource["Fn::GetAtt"][0])
        for role_id, role in TEMPLATE.resources_of_type("AWS::IAM::Role").items()
        for policy in role["Properties"].get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
        if "sqs:SendMessage" in _listed(statement["Action"])
        for resource in _listed(statement["Resource"])
    }
    assert {role for role, queue in sending if queue == "ReminderQueue"} == {"ContactReviewFunctionRole"}
    assert {queue for role, queue in sending if role == "ContactReviewFunctionRole"} == {"ReminderQueue"}


def test_preparing_a_letter_keeps_time_after_its_deadline_for_its_document_s_clean_up() -> None:
    """The clean-up (a read, a delete) is exempt from the deadline: after the task's last attempt, an attempt
    of each must be let through before the invocation's end (minid.deadline.guard: an attempt starts only
    while it and the margin fit before the deadline, which exempt moves to the time held after the exempt
    calls); the task keeps time enough for its own calls."""
    (workflow,) = [f for f in TEMPLATE.functions() if f.logical_id == "LetterWorkflowFunction"]
    attempt = CONNECT_SECONDS + READ_SECONDS
    end = float(workflow.timeout_seconds)
    last_normal_ends = end - CLEANUP_KEPT_SECONDS - MARGIN_SECONDS  # started at the latest, and as long as it may
    exempt_deadline = max(end - AFTER_EXEMPT_SECONDS, end - CLEANUP_KEPT_SECONDS)
    read_ends = last_normal_ends + attempt
    assert last_normal_ends + attempt + MARGIN_SECONDS <= exempt_deadline  # the read let through
    assert read_ends + attempt + MARGIN_SECONDS <= exempt_deadline  # then the delete
    assert read_ends + attempt <= end
    assert end - CLEANUP_KEPT_SECONDS - (attempt + MARGIN_SECONDS) >= 10  # the task's own calls


def test_the_notifier_keeps_time_after_its_deadline_for_the_writes_that_record_a_send() -> None:
    """Those writes are exempt from the deadline (refused, a delivery again would send twice): with DynamoDB
    hanging, a try of one (the SDK's attempts at their timeouts) must end in the function's time, not Lambda
    stop it in the write (the batch given back whole, the send made again later). The notices keep the
    time they had before, and a batch still running is not received again (half the visibility timeout)."""
    (notifier,) = [f for f in TEMPLATE.functions() if f.logical_id == "NotifierFunction"]
    # a whole try, its last attempt sent while it fits before the time held after the exempt writes
    whole_try = (RETRIES + 1) * (CONNECT_SECONDS + READ_SECONDS) + MARGIN_SECONDS + AFTER_EXEMPT_SECONDS
    assert whole_try <= RECORDING_KEPT_SECONDS
    assert notifier.timeout_seconds - RECORDING_KEPT_SECONDS >= 10  # the notices' batch of 5
    events = notifier.properties["Events"].values()
    queues = [e["Properties"]["Queue"]["Fn::GetAtt"][0] for e in events if e["Type"] == "SQS"]
    assert len(queues) == 3
    for queue in queues:
        assert 2 * notifier.timeout_seconds <= TEMPLATE.resources[queue]["Properties"]["VisibilityTimeout"]


def test_the_print_heartbeat_cannot_be_set_as_long_as_the_timeout() -> None:
    """CloudFormation cannot compare two parameters, and the PIN-letter function refuses to start with a
    heartbeat not shorter than the timeout: their ranges keep them apart. The timeout ends before the print
    documents expire, so that no letter still with the printer has lost its document."""
    parameters = TEMPLATE.document["Parameters"]
    heartbeat, timeout = parameters["PrintHeartbeatSeconds"], parameters["PrintTimeoutSeconds"]
    assert heartbeat["MaxValue"] < timeout["MinValue"]
    assert heartbeat["MinValue"] <= heartbeat["Default"] <= heartbeat["MaxValue"]
    # counted from the hand-over: a letter still waiting in the queue (its pickup as late as the alarm's
    # threshold allows, or handed out again after each visibility timeout) must not time out there
    queue = TEMPLATE.resources["PrintQueue"]["Properties"]
    alarm = TEMPLATE.resources["PrintQueueStuckAlarm"]["Properties"]
    handed_out = queue["VisibilityTimeout"] * queue["RedrivePolicy"]["maxReceiveCount"]
    assert heartbeat["MinValue"] >= handed_out
    # and the alarm (the provider picks up within 12 hours) fires before any letter times out there
    assert heartbeat["MinValue"] >= max(alarm["Threshold"] + 2 * alarm["Period"] * alarm["EvaluationPeriods"], 86400)
    assert timeout["MinValue"] <= timeout["Default"] <= timeout["MaxValue"]
    rules = TEMPLATE.resources["PrintDocumentsBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    expiry_days = min(rule["ExpirationInDays"] for rule in rules)
    assert timeout["MaxValue"] < expiry_days * 86400


def test_the_notices_queue_alarms_within_half_an_hour_yet_not_at_a_notice_put_off_twice() -> None:
    """SQS leaves a message out of ApproximateAgeOfOldestMessage once received three times: the oldest it
    counts has waited at most its delay (NoticeProofDelaySeconds) and two put-offs (retry_after), each after
    a receive that may have run out its visibility timeout. The alarm is above that, so that a notice failing
    does not fire it (its own alarms tell), and within half an hour: a queue the notifier does not take
    from (its mapping disabled), or one flooded, holds back the notices that warn of a takeover."""
    alarm = TEMPLATE.resources["NoticeQueueStuckAlarm"]["Properties"]
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["NoticeQueue", "QueueName"]}}]
    visibility = TEMPLATE.resources["NoticeQueue"]["Properties"]["VisibilityTimeout"]
    delay = TEMPLATE.document["Parameters"]["NoticeProofDelaySeconds"]["MaxValue"]
    counted_at_most = delay + retry_after(1) + retry_after(2) + 2 * visibility
    assert counted_at_most < alarm["Threshold"] <= 1800


def test_the_workflow_writes_no_arn_out() -> None:
    """Every ARN comes from DefinitionSubstitutions, the partition's too (arn:aws-cn, arn:aws-us-gov)."""
    text = (ROOT / "statemachines" / "pin_letter.asl.json").read_text()
    assert "arn:aws" not in text
    substitutions = TEMPLATE.resources["PinLetterWorkflow"]["Properties"]["DefinitionSubstitutions"]
    assert set(re.findall(r"\$\{(\w+)\}", text)) <= set(substitutions)


def test_only_alarms_publish_to_the_operators_alarm_topic_and_letters_not_posted_have_their_own() -> None:
    """A printer down for days fails every letter handed over: a message a letter on the alarms' topic would
    bury every alarm under them. Each goes, by its id, to a topic of its own (encrypted as every topic is);
    the alarms' topic takes CloudWatch's alarms alone (LetterWorkflowFailedAlarm among them, once a period)."""
    definition = json.loads((ROOT / "statemachines" / "pin_letter.asl.json").read_text())
    published = [
        state["Parameters"]["TopicArn"]
        for state in definition["States"].values()
        if state.get("Resource", "").endswith(":states:::sns:publish")
    ]
    assert published == ["${LettersNotPostedTopicArn}"]
    workflow = TEMPLATE.resources["PinLetterWorkflow"]["Properties"]
    assert workflow["DefinitionSubstitutions"]["LettersNotPostedTopicArn"] == {"Ref": "LettersNotPostedTopic"}
    assert "OperatorAlarmTopic" not in json.dumps(workflow)
    topic = TEMPLATE.resources["LettersNotPostedTopic"]["Properties"]
    assert topic["KmsMasterKeyId"] == {"Ref": "DataKey"}
    # told to the operators' address as the alarms are, by a subscription of its own (to end, for ticketing)
    email = TEMPLATE.resources["LettersNotPostedEmail"]
    alarms = TEMPLATE.resources["OperatorAlarmEmail"]
    assert email["Condition"] == alarms["Condition"]
    assert email["Properties"] == alarms["Properties"] | {"TopicArn": {"Ref": "LettersNotPostedTopic"}}
    referring = [n for n, r in TEMPLATE.resources.items() if '"OperatorAlarmTopic"' in json.dumps(r)]
    kinds = {TEMPLATE.resources[n]["Type"] for n in referring}
    assert kinds == {"AWS::CloudWatch::Alarm", "AWS::SNS::Subscription", "AWS::IAM::Role"}
    # the role: for executions started before the letters' own topic (on their old definition) alone
    (role,) = [n for n in referring if TEMPLATE.resources[n]["Type"] == "AWS::IAM::Role"]
    statements = [
        statement
        for policy in TEMPLATE.resources[role]["Properties"]["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
        if '"OperatorAlarmTopic"' in json.dumps(statement)
    ]
    assert statements == [
        {
            "Sid": "LettersNotPostedBeforeTheirTopic",
            "Effect": "Allow",
            "Action": "sns:Publish",
            "Resource": {"Ref": "OperatorAlarmTopic"},
        }
    ]


def test_alarms_on_our_own_metrics_name_them_as_the_functions_write_them() -> None:
    """An alarm matches a metric only with its exact dimensions: Powertools writes ours under the
    service's name alone (minid.observability.count with no dimensions of its own)."""
    variables = TEMPLATE.document["Globals"]["Function"]["Environment"]["Variables"]
    namespace, service = variables["POWERTOOLS_METRICS_NAMESPACE"], variables["POWERTOOLS_SERVICE_NAME"]
    # each stack's own namespace: another stack in the account (a test stage's) neither sets off this one's
    # alarms nor holds them in ALARM
    assert namespace == {"Fn::Sub": "MinID/${AWS::StackName}"}
    every = [r["Properties"] for r in TEMPLATE.resources_of_type("AWS::CloudWatch::Alarm").values()]
    ours = [a for a in every if {"Name": "service", "Value": service} in a.get("Dimensions", [])]
    assert [a["MetricName"] for a in ours if a["Namespace"] != namespace] == []
    alarms = [a for a in every if a.get("Namespace") == namespace]
    assert alarms
    code = "\n".join(p.read_text() for folder in DEPLOYED_CODE for p in folder.rglob("*.py"))
    for alarm in alarms:
        assert alarm["Dimensions"] == [{"Name": "service", "Value": service}]
        assert f'observability.count("{alarm["MetricName"]}")' in code


def test_the_review_missing_is_told_within_a_day_and_never_for_the_night() -> None:
    """The alarm's window (hours without a run, every one of them) is longer than the schedule's night
    and at most the day CloudWatch allows."""
    alarm = TEMPLATE.resources["ContactReviewMissingAlarm"]["Properties"]
    schedule = TEMPLATE.resources["ContactReviewFunction"]["Properties"]["Events"]
    (cron,) = [
        e["Properties"]["ScheduleExpression"] for e in schedule.values() if "ScheduleExpression" in e["Properties"]
    ]
    hours = re.fullmatch(r"cron\(0 (\d+)-(\d+) \* \* \? \*\)", cron)
    assert hours is not None, cron
    first, last = (int(h) for h in hours.groups())
    night = (24 - (last - first)) * 3600
    window = alarm["Period"] * alarm["DatapointsToAlarm"]
    assert alarm["DatapointsToAlarm"] == alarm["EvaluationPeriods"]
    assert night < window <= 86400
    assert alarm["TreatMissingData"] == "breaching"  # no invocation, no data point


def test_letters_unprintable_alarm_at_the_first_and_stay_so_an_hour() -> None:
    """Anyone may order in the name of one the letter cannot print: the first refusal alarms, and the
    alarm holds for an hour after the last, rather than alarming again with every order."""
    alarm = TEMPLATE.resources["LettersUnprintableAlarm"]["Properties"]
    assert (alarm["MetricName"], alarm["Statistic"], alarm["Threshold"]) == ("LettersUnprintable", "Sum", 1)
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"  # one refusal alarms
    assert alarm["AlarmActions"] == [{"Ref": "OperatorAlarmTopic"}]
    assert alarm["DatapointsToAlarm"] == 1
    assert alarm["Period"] * alarm["EvaluationPeriods"] >= 3600
    assert alarm["TreatMissingData"] == "notBreaching"  # no refusal, no data point


def test_one_notice_failing_alarms_however_far_it_is_put_off() -> None:
    """A notice put off as far as it goes still fails within each of the alarm's periods: one notice
    failing at night alarms, not only many failing at once; a blip across two periods does not."""
    alarm = TEMPLATE.resources["NoticeKeepsFailingAlarm"]["Properties"]
    many = TEMPLATE.resources["NoticesFailingAlarm"]["Properties"]
    assert alarm["Period"] >= RETRY_MOST_SECONDS
    assert alarm["DatapointsToAlarm"] == alarm["EvaluationPeriods"] >= 3
    assert alarm["Period"] * alarm["DatapointsToAlarm"] <= 3600  # well before the notice's ~3 hours run out
    assert (alarm["MetricName"], alarm["Threshold"], alarm["Statistic"]) == (many["MetricName"], 1, "Sum")


def test_the_gateways_own_throttling_is_counted_from_fields_the_access_log_has() -> None:
    """The throttle answers before any function runs: only the access log sees it. The filter reads the
    log's own fields (a renamed field would count nothing, silently), and the alarm reads its metric."""
    api = TEMPLATE.resources["HttpApi"]["Properties"]
    logged = json.loads(api["AccessLogSettings"]["Format"])
    filter_ = TEMPLATE.resources["GatewayThrottledMetricFilter"]["Properties"]
    assert filter_["LogGroupName"] == {"Ref": api["AccessLogSettings"]["DestinationArn"]["Fn::GetAtt"][0]}
    fields = dict(re.findall(r'\$\.(\w+) (?:=|!=) "([^"]*)"', filter_["FilterPattern"]))
    assert fields == {"status": "429", "integrationStatus": "200"}
    assert (logged["status"], logged["integrationStatus"]) == ("$context.status", "$context.integrationStatus")
    (metric,) = filter_["MetricTransformations"]
    alarm = TEMPLATE.resources["GatewayThrottledAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == (metric["MetricNamespace"], metric["MetricName"])
    assert alarm["AlarmActions"] == [{"Ref": "OperatorAlarmTopic"}]


def test_a_deploy_names_its_stage() -> None:
    """Without a default, `sam deploy --guided` asks: a production deployed with the defaults would be a
    test stack (synthetic identity numbers accepted, no deletion protection, the print provider's rules
    not checked)."""
    assert "Default" not in TEMPLATE.document["Parameters"]["Stage"]


def test_the_pepper_is_generated_as_it_was_at_the_first_deploy() -> None:
    """CloudFormation generates the secret anew on an update that edits GenerateSecretString, Retain or
    not: every table key, code hash and password hash would then stop matching. The block stays as it is
    (and the secret, with the key sealing it, is kept whatever happens to the stack)."""
    pepper = TEMPLATE.resources["PepperSecret"]
    assert pepper["Properties"]["GenerateSecretString"] == {"PasswordLength": 64, "ExcludePunctuation": True}
    assert pepper["Properties"]["KmsKeyId"] == {"Ref": "DataKey"}
    assert (pepper["DeletionPolicy"], pepper["UpdateReplacePolicy"]) == ("Retain", "Retain")


def test_the_e_mail_sender_s_identity_is_kept_and_may_be_one_that_exists() -> None:
    """A new SES identity has new DKIM tokens: deleted or replaced with the stack, no e-mail would go out
    until DNS had them. And SES refuses a second identity of a domain in an account and region: a stack
    whose domain has one (another stack's, or made by hand) uses it."""
    identity = TEMPLATE.resources["SenderIdentity"]
    assert (identity["DeletionPolicy"], identity["UpdateReplacePolicy"]) == ("Retain", "Retain")
    assert identity["Condition"] == "MakesSenderIdentity"
    made = TEMPLATE.document["Conditions"]["MakesSenderIdentity"]
    assert made == {"Fn::Equals": [{"Ref": "SenderIdentityExists"}, "false"]}
    assert TEMPLATE.document["Parameters"]["SenderIdentityExists"]["Default"] == "false"


def test_the_http_functions_keep_time_after_a_request_s_deadline_for_the_writes_that_go_out_whatever_the_time() -> None:
    """Those writes are exempt from the deadline (the record of a code sent, a try given back): after a
    request's last attempt, one attempt of one must be let through before the invocation's end, rather
    than Lambda stop the function in it (API Gateway's bare 500). The requests keep the 10 s they had, and
    API Gateway (30 s at most) waits for the function's whole time."""
    http = [
        f for f in TEMPLATE.functions() if any(e["Type"] == "HttpApi" for e in f.properties.get("Events", {}).values())
    ]
    assert {f.logical_id for f in http} >= {
        "LoginFunction",
        "EnrolmentFunction",
        "ContactFunction",
        "PinLettersFunction",
    }
    attempt = CONNECT_SECONDS + READ_SECONDS
    for function in http:
        end = float(function.timeout_seconds)
        last_normal_ends = end - EXEMPT_KEPT_SECONDS  # at the latest (sent while it fits before the deadline)
        exempt_deadline = max(end - AFTER_EXEMPT_SECONDS, end - EXEMPT_KEPT_SECONDS)
        assert last_normal_ends + attempt + MARGIN_SECONDS <= exempt_deadline, function.logical_id  # let through
        assert end - EXEMPT_KEPT_SECONDS >= 10, function.logical_id
        assert end < 30, function.logical_id
