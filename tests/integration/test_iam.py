"""Each function's role allows every AWS call the function makes on the benchmark's journey (every route
and every workflow task, bench/routes.py), judged call by call (tests/integration/iam.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from msgspec.structs import replace

from bench.calls import CallCounter
from bench.routes import Tally, embedded_stack, journey
from local.provision import Stack
from minid.adapters.contacts import DynamoDbContactRegister, contact_item
from minid.domain.contacts import REMIND_AFTER, STALE_AFTER
from minid.domain.notices import RECIPIENTS_SEALED_FOR
from minid.domain.time import date_in_norway
from tests.integration.iam import (
    Call,
    Recorder,
    Tables,
    allowed,
    denied,
    read_item,
    searched,
    updated_attributes,
)
from tests.integration.letters import LetterDriver
from tests.integration.users import User, enrolled


@pytest.fixture(scope="module")
def journeyed() -> Iterator[tuple[Stack, list[Call]]]:
    recorder = Recorder()
    counter = CallCounter()
    tally = Tally(counter)
    with embedded_stack(counter, tally) as driver:
        recorder.install()
        for function in driver.local.functions.by_logical_id.values():
            recorder.attribute(function)
        _walk(driver, tally)
        try:
            yield driver.local.stack, recorder.calls
        finally:
            recorder.uninstall()


def _walk(driver: LetterDriver, tally: Tally) -> None:
    warm = enrolled(driver, mobile="93000009")
    warm.call("GET", "/v1/me/contact", token=warm.login())
    journey(driver, tally)
    # the daily review with something to do: one record to remind, one to mark stale
    # (its reminder's day is the first after the 16 months: today, for a record confirmed 16 months and a
    # day ago)
    for mobile, age in (("93000010", REMIND_AFTER + timedelta(days=1)), ("93000011", STALE_AFTER + timedelta(days=2))):
        _due_today(driver, enrolled(driver, mobile=mobile), age)
    outcome = driver.local.functions.by_logical_id["ContactReviewFunction"].invoke({})
    assert (outcome["reminded"], outcome["marked_stale"]) == (1, 1)
    driver.notices_delivered()


def _due_today(driver: LetterDriver, user: User, age: timedelta) -> None:
    person = driver.key(user.identity_number)
    contacts = DynamoDbContactRegister(driver.dynamodb, driver.local.stack.refs["ContactRegisterTable"])
    record = contacts.find(person)
    assert record is not None
    old = replace(record, updated_at=record.updated_at - age, confirmed_at=None)
    today = {"review_on": {"S": date_in_norway(datetime.now(UTC)).isoformat()}}
    item = contact_item(person, old) | today
    driver.dynamodb.put_item(TableName=driver.local.stack.refs["ContactRegisterTable"], Item=item)


# ---------------------------------------------------------------------- the checks
def test_the_journey_was_recorded_for_every_function(journeyed: tuple[Stack, list[Call]]) -> None:
    stack, calls = journeyed
    callers = {c.function for c in calls}
    functions = {f for f, r in stack.template.resources.items() if r["Type"] == "AWS::Serverless::Function"}
    assert functions - callers == {"HealthFunction"}  # it calls nothing


def test_every_call_is_allowed_by_the_functions_role(journeyed: tuple[Stack, list[Call]]) -> None:
    stack, calls = journeyed
    assert denied(stack, calls) == []


@pytest.mark.parametrize(
    ("update", "written"),
    [
        (
            {"UpdateExpression": "SET #s = :v, a = :a REMOVE b ADD c :one", "ExpressionAttributeNames": {"#s": "st"}},
            ["st", "a", "b", "c"],
        ),
        (
            {
                "UpdateExpression": "SET codes.#c0 = :c0, codes_sent_at = :now",
                "ExpressionAttributeNames": {"#c0": "sms"},
            },
            ["codes", "codes_sent_at"],
        ),
    ],
)
def test_what_an_update_writes_is_read_from_its_expression(update: dict[str, Any], written: list[str]) -> None:
    assert updated_attributes(update) == written


def test_a_statement_with_a_condition_allows_only_what_it_names() -> None:
    granted = [
        {
            "Action": "dynamodb:UpdateItem",
            "Resource": "arn:t",
            "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["rate#orders#*"]}},
        }
    ]
    assert allowed(granted, "dynamodb:UpdateItem", "arn:t", {"dynamodb:LeadingKeys": ["rate#orders#x"]})
    assert not allowed(granted, "dynamodb:UpdateItem", "arn:t", {"dynamodb:LeadingKeys": ["letter#1"]})
    assert not allowed(granted, "dynamodb:GetItem", "arn:t", {"dynamodb:LeadingKeys": ["rate#orders#x"]})
    assert not allowed(granted, "dynamodb:UpdateItem", "arn:u", {"dynamodb:LeadingKeys": ["rate#orders#x"]})


def test_a_read_naming_no_attributes_passes_a_for_all_values_condition_as_on_aws() -> None:
    """AWS takes ForAllValues over a key the request lacks as true: a read that names no attributes (the
    whole item) is denied only by the Select clause the statements limited to some attributes carry."""
    limited = {"ForAllValues:StringEquals": {"dynamodb:Attributes": ["pk", "status"]}}
    selecting = limited | {"StringEqualsIfExists": {"dynamodb:Select": "SPECIFIC_ATTRIBUTES"}}
    whole = {"dynamodb:Select": ["ALL_ATTRIBUTES"]}
    some = {"dynamodb:Select": ["SPECIFIC_ATTRIBUTES"], "dynamodb:Attributes": ["pk", "status"]}
    for condition, whole_allowed in ((limited, True), (selecting, False)):
        granted = [{"Action": "dynamodb:GetItem", "Resource": "arn:t", "Condition": condition}]
        assert allowed(granted, "dynamodb:GetItem", "arn:t", whole) is whole_allowed
        assert allowed(granted, "dynamodb:GetItem", "arn:t", some)


def test_a_statement_naming_what_it_does_not_cover_covers_the_rest() -> None:
    granted = [{"NotAction": "sns:CreateTopic", "Resource": "*"}]
    assert allowed(granted, "sns:Publish", "*", {})
    assert not allowed(granted, "sns:CreateTopic", "*", {})
    denying = [{"Action": "sns:Publish", "NotResource": "arn:aws:sns:*:*:*"}]
    assert allowed(denying, "sns:Publish", "*", {})  # an SMS: no topic
    assert not allowed(denying, "sns:Publish", "arn:aws:sns:eu-north-1:1:topic", {})


def test_only_the_notifier_may_open_the_recipients_sealed_in_a_notice(journeyed: tuple[Stack, list[Call]]) -> None:
    """Sealed under the data key, which every function may decrypt with for its own data: every role but
    the notifier's is denied this one use (its encryption context), so the queues show no contact."""
    stack, _ = journeyed
    key = stack.attributes["DataKey"]["Arn"]
    sealed = {
        "KeyId": key,
        "CiphertextBlob": b"x",
        "EncryptionContext": {"purpose": RECIPIENTS_SEALED_FOR, "owner": "n"},
    }
    other = {"KeyId": key, "CiphertextBlob": b"x", "EncryptionContext": {"purpose": "something-else"}}
    roles = [f for f, r in stack.template.resources.items() if r["Type"] == "AWS::Serverless::Function"]
    for function in roles:
        opening = Call(function, "kms", "Decrypt", sealed)
        assert (denied(stack, [opening]) == []) is (function == "NotifierFunction"), function
    assert denied(stack, [Call("ContactFunction", "kms", "Decrypt", other)]) == []  # its own uses stand


def test_every_e_mail_is_sent_with_the_configuration_set_that_suppresses_bounces_only(
    journeyed: tuple[Stack, list[Call]],
) -> None:
    """Not the account's suppression list alone, which keeps every e-mail from an address whose owner once
    marked one of ours as spam (SES takes it, and sends nothing): their codes and security notices too."""
    stack, calls = journeyed
    sent = [c for c in calls if (c.service, c.operation) == ("sesv2", "SendEmail")]
    assert {"EnrolmentFunction", "NotifierFunction"} <= {c.function for c in sent}  # (the journey's)
    assert {c.params.get("ConfigurationSetName") for c in sent} == {stack.refs["EmailConfigurationSet"]}
    options = stack.template.resources["EmailConfigurationSet"]["Properties"]["SuppressionOptions"]
    assert options == {"SuppressedReasons": ["BOUNCE"]}


def test_a_statement_limited_to_some_attributes_allows_a_read_of_those_alone() -> None:
    granted = [
        {
            "Action": "dynamodb:GetItem",
            "Resource": "arn:t",
            "Condition": {
                "ForAllValues:StringEquals": {"dynamodb:Attributes": ["pk", "language"]},
                "StringEqualsIfExists": {"dynamodb:Select": "SPECIFIC_ATTRIBUTES"},
            },
        }
    ]
    specific = {"dynamodb:Select": ["SPECIFIC_ATTRIBUTES"]}
    assert allowed(granted, "dynamodb:GetItem", "arn:t", specific | {"dynamodb:Attributes": ["language", "pk"]})
    assert not allowed(granted, "dynamodb:GetItem", "arn:t", specific | {"dynamodb:Attributes": ["mobile", "pk"]})
    assert not allowed(granted, "dynamodb:GetItem", "arn:t", {"dynamodb:Select": ["ALL_ATTRIBUTES"]})


def test_a_projected_read_counts_the_key_s_attributes_as_aws_does() -> None:
    """AWS counts a read's key attributes in dynamodb:Attributes: a statement that names part of a table's
    key (pk, not sk) allows no read of it at all, whatever it projects."""
    tables = Tables({"t": "arn:t"}, {"t": "pk"})
    request = {"ProjectionExpression": "#s", "ExpressionAttributeNames": {"#s": "status"}}
    action, resource, context = read_item(tables, "GetItem", "t", {"pk": {"S": "a"}, "sk": {"S": "b"}}, request)
    assert context["dynamodb:Attributes"] == ["pk", "sk", "status"]

    def limited_to(*attributes: str) -> list[dict[str, Any]]:
        condition = {"ForAllValues:StringEquals": {"dynamodb:Attributes": list(attributes)}}
        return [{"Action": "dynamodb:GetItem", "Resource": "arn:t", "Condition": condition}]

    assert not allowed(limited_to("pk", "status"), action, resource, context)
    assert allowed(limited_to("pk", "sk", "status"), action, resource, context)


def test_a_projected_query_of_an_index_counts_the_index_s_and_the_table_s_keys_as_aws_does() -> None:
    """As a read of one item: a statement limited to some attributes must name the keys of the table and of
    the index queried, whatever the query projects."""
    tables = Tables({"t": "arn:t"}, {"t": "pk"}, {"t": ["pk"], "t/index/i": ["pk", "review_on"]})
    request = {"TableName": "t", "IndexName": "i", "ProjectionExpression": "reserved"}
    action, resource, context = searched(tables, "Query", request)
    assert (action, resource, context["dynamodb:Attributes"]) == (
        "dynamodb:Query",
        "arn:t/index/i",
        ["pk", "reserved", "review_on"],
    )

    def limited_to(*attributes: str) -> list[dict[str, Any]]:
        condition = {"ForAllValues:StringEquals": {"dynamodb:Attributes": list(attributes)}}
        return [{"Action": "dynamodb:Query", "Resource": "arn:t/index/i", "Condition": condition}]

    assert not allowed(limited_to("pk", "reserved"), action, resource, context)
    assert allowed(limited_to("pk", "review_on", "reserved"), action, resource, context)


def _batch_read(function: str, table: str, *attributes: str) -> Call:
    """A BatchGetItem of one item of the table by the function: of these attributes (none: the whole item)."""
    request: dict[str, Any] = {"Keys": [{"pk": {"S": "p"}}]}
    if attributes:
        names = {f"#a{i}": name for i, name in enumerate(attributes)}
        request |= {"ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names}
    return Call(function, "dynamodb", "BatchGetItem", {"RequestItems": {table: request}})


def test_the_letter_workflow_may_read_a_persons_language_and_not_their_contacts(
    journeyed: tuple[Stack, list[Call]],
) -> None:
    """It reads the contact record for the letter's language; the mobile and e-mail are the notifier's."""
    stack, calls = journeyed
    table = stack.refs["ContactRegisterTable"]
    made = [c for c in calls if c.function == "LetterWorkflowFunction" and table in c.params.get("RequestItems", {})]
    assert made  # read on the journey, and allowed (test_every_call_is_allowed_by_the_functions_role)

    read = partial(_batch_read, "LetterWorkflowFunction", table)

    assert denied(stack, [read("pk", "language")]) == []
    assert denied(stack, [read()]) != []  # the whole record
    assert denied(stack, [read("pk", "language", "mobile")]) != []
    assert denied(stack, [read("pk", "email")]) != []


def test_the_activation_of_a_letter_in_the_post_reads_no_register_and_no_contact(
    journeyed: tuple[Stack, list[Call]],
) -> None:
    """Activating, failing and telling of a letter are the letter's: the person's language and contacts are
    read by the checks before the printer, and by the notifier."""
    stack, calls = journeyed
    assert {c.operation for c in calls if c.function == "LetterActivationFunction"} >= {"UpdateItem", "SendMessage"}
    key = {"pk": {"S": "p"}}
    for table in (stack.refs["PopulationRegisterTable"], stack.refs["ContactRegisterTable"]):
        get = Call("LetterActivationFunction", "dynamodb", "GetItem", {"TableName": table, "Key": key})
        batch = Call("LetterActivationFunction", "dynamodb", "BatchGetItem", {"RequestItems": {table: {"Keys": [key]}}})
        assert denied(stack, [get]) != []
        assert denied(stack, [batch]) != []


@pytest.mark.parametrize("function", ["PinLettersFunction", "ContactFunction"])
def test_a_function_that_authenticates_only_may_read_an_account_s_epoch_and_nothing_else(
    journeyed: tuple[Stack, list[Call]], function: str
) -> None:
    """It holds the pepper, which opens the app's sealed secret: the account's password hash and secrets
    are not for it to read, for anyone's account."""
    stack, calls = journeyed
    table = stack.refs["UsersTable"]
    made = [c for c in calls if c.function == function and c.params.get("TableName") == table]
    assert made  # read on the journey, and allowed (test_every_call_is_allowed_by_the_functions_role)

    def read(projection: str | None) -> Call:
        request: dict[str, Any] = {"TableName": table, "Key": {"pk": {"S": "p"}}}
        return Call(
            function, "dynamodb", "GetItem", request | ({"ProjectionExpression": projection} if projection else {})
        )

    assert denied(stack, [read("pk, session_epoch")]) == []
    assert denied(stack, [read(None)]) != []  # the whole account
    assert denied(stack, [read("pk, session_epoch, password_hash")]) != []
    assert denied(stack, [read("totp_secret")]) != []


def test_the_enrolment_may_read_of_an_account_when_it_was_made_and_its_epoch_alone(
    journeyed: tuple[Stack, list[Call]],
) -> None:
    """It holds the pepper, which opens the app's sealed secret; an enrolment that replaces an account keeps
    its creation and follows its epoch, and has no use for its password hash or secrets. (A failed
    condition's item handed back, ReturnValuesOnConditionCheckFailure, has no condition key: held by review.)"""
    stack, calls = journeyed
    table = stack.refs["UsersTable"]
    made = [c for c in calls if c.function == "EnrolmentFunction" and table in c.params.get("RequestItems", {})]
    assert made  # read on the journey, and allowed (test_every_call_is_allowed_by_the_functions_role)

    read = partial(_batch_read, "EnrolmentFunction", table)

    assert denied(stack, [read("pk", "created_at", "session_epoch")]) == []
    assert denied(stack, [read()]) != []  # the whole account
    assert denied(stack, [read("pk", "session_epoch", "password_hash")]) != []
    assert denied(stack, [read("totp_secret")]) != []
    put = Call("EnrolmentFunction", "dynamodb", "PutItem", {"TableName": table, "Item": {"pk": {"S": "p"}}})
    assert denied(stack, [put]) == []
    handed_back = Call(put.function, put.service, put.operation, put.params | {"ReturnValues": "ALL_OLD"})
    assert denied(stack, [handed_back]) != []


def test_the_print_callback_may_read_what_a_report_is_judged_by_and_not_a_letter_s_codes(
    journeyed: tuple[Stack, list[Call]],
) -> None:
    """Reached by the print provider's role, of another company: a letter's code hashes, and whose it is,
    are not for it to read."""
    stack, calls = journeyed
    table = stack.refs["PinLettersTable"]
    made = [c for c in calls if c.function == "PrintCallbackFunction" and c.operation == "GetItem"]
    assert made  # read on the journey, and allowed (test_every_call_is_allowed_by_the_functions_role)

    def read(*attributes: str) -> Call:
        request: dict[str, Any] = {"TableName": table, "Key": {"pk": {"S": "letter#x"}, "sk": {"S": "letter"}}}
        if attributes:
            names = {f"#a{i}": name for i, name in enumerate(attributes)}
            request |= {"ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names}
        return Call("PrintCallbackFunction", "dynamodb", "GetItem", request)

    assert denied(stack, [read("pk", "status", "document", "dispatched_at", "reported")]) == []
    assert denied(stack, [read("status")]) == []  # the key is counted all the same, allowed as a whole
    assert denied(stack, [read()]) != []  # the whole letter
    assert denied(stack, [read("pk", "status", "codes")]) != []
    assert denied(stack, [read("person")]) != []
    recorded = [c for c in calls if c.function == "PrintCallbackFunction" and c.operation == "UpdateItem"]
    assert recorded
    assert denied(stack, recorded) == []
    whole = [Call(c.function, c.service, c.operation, c.params | {"ReturnValues": "ALL_OLD"}) for c in recorded]
    assert denied(stack, whole) != []  # an update that hands the whole letter back


@pytest.mark.parametrize("function", ["NotifierFunction", "ContactReviewFunction"])
def test_who_reads_whether_a_person_is_alive_may_read_that_alone(
    journeyed: tuple[Stack, list[Call]], function: str
) -> None:
    """The notifier and the daily review tell no dead person's contacts: a person's status is theirs to
    read, and not their name, birth date or address."""
    stack, calls = journeyed
    table = stack.refs["PopulationRegisterTable"]
    made = [c for c in calls if c.function == function and c.params.get("TableName") == table]
    assert made  # the journey's notices, and its review's reminder, read it (and are allowed)
    assert all(c.params.get("ProjectionExpression") for c in made)

    def read(*attributes: str) -> Call:
        request: dict[str, Any] = {"TableName": table, "Key": {"pk": {"S": "p"}}}
        if attributes:
            names = {f"#a{i}": name for i, name in enumerate(attributes)}
            request |= {"ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names}
        return Call(function, "dynamodb", "GetItem", request)

    assert denied(stack, [read("status")]) == []
    assert denied(stack, [read()]) != []  # the whole person
    assert denied(stack, [read("status", "given_name")]) != []
    assert denied(stack, [read("address")]) != []


def test_the_daily_review_may_read_what_it_judges_a_record_by_and_not_its_contacts(
    journeyed: tuple[Stack, list[Call]],
) -> None:
    """The index on the review date holds whole records; the review reads their update, confirmation and
    reservation alone (its reminders go through the notifier, which reads the contacts)."""
    stack, calls = journeyed
    table = stack.refs["ContactRegisterTable"]
    made = [c for c in calls if c.function == "ContactReviewFunction" and c.operation == "Query"]
    assert made  # read on the journey, and allowed (test_every_call_is_allowed_by_the_functions_role)

    def query(*attributes: str) -> Call:
        request: dict[str, Any] = {"TableName": table, "IndexName": "ByReviewDate"}
        if attributes:
            names = {f"#a{i}": name for i, name in enumerate(attributes)}
            request |= {"ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names}
        return Call("ContactReviewFunction", "dynamodb", "Query", request)

    assert denied(stack, [query("pk", "updated_at", "confirmed_at", "reserved")]) == []
    rescheduled = [c for c in calls if c.function == "ContactReviewFunction" and c.operation == "UpdateItem"]
    assert rescheduled
    assert denied(stack, rescheduled) == []
    whole = [Call(c.function, c.service, c.operation, c.params | {"ReturnValues": "ALL_NEW"}) for c in rescheduled]
    assert denied(stack, whole) != []  # an update that hands the whole record back
    assert denied(stack, [query()]) != []  # the whole record
    assert denied(stack, [query("pk", "updated_at", "mobile")]) != []
    assert denied(stack, [query("pk", "email")]) != []
