"""The logger's net for personal data, and the search the e2e suite runs over the stack's logs."""

from __future__ import annotations

import io
import json
import logging
import uuid
from typing import Any

import pytest
from aws_lambda_powertools import Logger

from minid import observability
from minid.observability import MASK, MaskingFormatter, redact
from tests.e2e.personal_data import PersonalData

IDENTITY_NUMBER = "15108695088"
TOKEN = "q3Jt0w7Zc1k2Vb9xYd8mNf5GhA6sLp4RuTeWoIyQzXc"  # the shape of an access token (43 characters)
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def logged(emit: Any) -> dict[str, Any]:
    stream = io.StringIO()
    log = Logger(
        service=f"test-{uuid.uuid4().hex[:6]}",
        logger_formatter=MaskingFormatter(),
        logger_handler=logging.StreamHandler(stream),
    )
    emit(log)
    line: dict[str, Any] = json.loads(stream.getvalue().splitlines()[-1])
    return line


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (f"person {IDENTITY_NUMBER} ordered", "person [identity number] ordered"),
        ("sent to +4791234567 and 91234567", "sent to [phone] and [phone]"),
        ("sent to +47 912 34 567", "sent to [phone]"),
        ("sent to 0047 912 34 567, +47-912-34-567 and +47.91.23.45.67", "sent to [phone], [phone] and [phone]"),
        ("sent to 912 34 567, 91 23 45 67 and 4791234567", "sent to [phone], [phone] and [phone]"),
        ("person 151086 95088 or 151086-95088", "person [identity number] or [identity number]"),
        # ids whose digits have a code's or a phone number's shape stay whole
        ("letter 12345678-4512-9209-8123-456789012345 posted", "letter 12345678-4512-9209-8123-456789012345 posted"),
        ("ids 91234567-0000-4000-8000-000000123456, 123456", "ids 91234567-0000-4000-8000-000000123456, [code]"),
        ("split 12345678-1234-1234-1234-1234\x0056789012 ok", "split 12345678-1234-1234-1234-123456789012 ok"),
        ("mail kari.nordmann+minid@example.no now", "mail [e-mail] now"),
        ("not verified: kari.o'neil@example.no", "not verified: [e-mail]"),  # not "kari.o'[e-mail]"
        ("to 'o'brien@example.no' and it's done", "to '[e-mail]' and it's done"),
        ("from='ola@x.no'&to='kari@y.no'", "from='[e-mail]'&to='[e-mail]'"),  # one right after another's quote
        ("'ola@x.no''kari@y.no' a@b.cc'kari@x.no", "'[e-mail]''[e-mail]' [e-mail]'[e-mail]"),
        ("email='kari@x.no' to=['a@x.no', 'b@y.no']", "email='[e-mail]' to=['[e-mail]', '[e-mail]']"),
        ("kari=nordmann@x.no bjørn=ola@x.no a=b=c@x.no", "[e-mail] [e-mail] [e-mail]"),  # an = of the address's own
        ("sent to +6907290 (Tokelau)", "sent to [phone] (Tokelau)"),  # a mobile of seven digits
        # begun where an address can begin: after a bracket, a quote or another @ as well as a space
        ("<ola.n@x.com> (y@z.org) 'k@d.no' a@b@c.no", "<[e-mail]> ([e-mail]) '[e-mail]' a@[e-mail]"),
        ("code 123456 given", "code [code] given"),
        (f"Authorization: Bearer {TOKEN}", "Authorization: Bearer [token]"),
        (f"token {TOKEN} seen", "token [token] seen"),
        (f"secret {TOTP_SECRET}", "secret [secret]"),
        # a date on its own, as a parser's error quotes a register's birth date or day of death
        ("Invalid isoformat string: '1985-13-45'", "Invalid isoformat string: '[date]'"),
        ("born 1986-10-15, died 3.2.2024 or 20240203", "born [date], died [date] or [date]"),
        ("born 15.10.1986.", "born [date]."),
        # ids, times and counts stay readable
        (
            "at 2026-11-22 07:00:00 and 2026-11-22T07:00Z, in 1234 ms",
            "at 2026-11-22 07:00:00 and 2026-11-22T07:00Z, in 1234 ms",
        ),
        ("letter 0b6f1c2e-8d1a-4c3b-9a7e-2f4d5c6b7a8e posted", "letter 0b6f1c2e-8d1a-4c3b-9a7e-2f4d5c6b7a8e posted"),
        ("2026-11-22T07:00:00.123+00:00 took 1234 ms", "2026-11-22T07:00:00.123+00:00 took 1234 ms"),
    ],
)
def test_free_text_is_masked_by_shape(text: str, masked: str) -> None:
    assert redact(text) == masked


def test_messages_fields_and_exceptions_are_masked() -> None:
    line = logged(lambda log: log.info(f"login of {IDENTITY_NUMBER}", extra={"mobile": "+4791234567", "count": 3}))
    assert line["message"] == "login of [identity number]"
    assert line["mobile"] == "***"
    assert line["count"] == 3
    # an identity number or a mobile's given as a number is masked; any other number is left a number
    numbers = {"nin": int(IDENTITY_NUMBER), "n": 91234567, "ms": 17.5, "reminded": 123456, "at": 0.123456}
    line = logged(lambda log: log.info("x", extra=numbers))
    assert line == line | {"nin": "[identity number]", "n": "[phone]", "ms": 17.5, "reminded": 123456, "at": 0.123456}

    def fail(log: Logger) -> None:
        try:
            raise ValueError(f"bad input_value='{IDENTITY_NUMBER}' for kari@example.no")
        except ValueError:
            log.exception("failed")

    line = logged(fail)
    assert IDENTITY_NUMBER not in json.dumps(line)
    assert "kari@example.no" not in json.dumps(line)
    assert "[identity number]" in line["exception"]


def test_nested_fields_named_for_personal_data_are_masked() -> None:
    line = logged(lambda log: log.info("notice", extra={"notice": {"to": "kari@example.no", "kind": "welcome"}}))
    assert line["notice"] == {"to": "***", "kind": "welcome"}


def test_a_register_s_fields_and_keys_that_are_personal_data_are_masked() -> None:
    """Names and streets have no shape in free text: their fields' names mask them. A dict keyed by an
    identity number or an address is masked in its keys, at any depth."""
    person = {"given_name": "Kari", "family_name": "Nordmann", "street": "Storgata 1", "city": "OSLO", "kind": "fnr"}
    line = logged(lambda log: log.info("x", extra={"person": person, IDENTITY_NUMBER: 1, "by": {"kari@x.no": 2}}))
    assert line["person"] == dict.fromkeys(person, "***") | {"kind": "fnr"}
    assert (line["[identity number]"], line["by"]) == (1, {"[e-mail]": 2})
    two = logged(lambda log: log.info("x", extra={"by": {"kari@x.no": 1, "ola@y.no": 2}}))  # masked alike, both kept
    assert sorted(two["by"].values()) == [1, 2]
    for value in ("Kari", "Nordmann", "Storgata", "OSLO", IDENTITY_NUMBER, "kari@x.no"):
        assert value not in json.dumps(line)


def test_the_search_finds_what_was_used_and_says_where_without_the_value() -> None:
    data = PersonalData()
    data.add_exchange(
        {"identity_number": IDENTITY_NUMBER, "password": "sommerfugl i vinterland", "mobile": "912 34 567"}
    )
    data.add_exchange({"access_token": TOKEN, "nested": [{"code": "123456"}]})
    data.add_outbox(
        {"letters": [{"identity_number": IDENTITY_NUMBER, "pin_codes": {"1": "654321"}}], "sms": [], "emails": []}
    )
    lines = [
        '{"message": "ok", "function_request_id": "0b6f1c2e-8d1a-4c3b-9a7e-2f4d5c6b7a8e"}',
        f'{{"message": "fnr={IDENTITY_NUMBER}"}}',
        '{"message": "to +4791234567"}',
        '{"message": "pw sommerfugl i vinterland"}',
        f'{{"message": "{TOKEN}"}}',
        '{"message": "pin 654321, otc 123456, not 1234567 nor 12345"}',
    ]
    found = list(data.found_in(lines))
    assert found == [
        "line 2: letter identity number",
        "line 3: mobile",
        "line 4: password",
        "line 5: access_token",
        "line 6: PIN code.1",
        "line 6: code",
    ]
    assert not any(IDENTITY_NUMBER in f or "sommerfugl" in f for f in found)


def test_the_search_finds_names_addresses_and_numbers_written_with_spaces() -> None:
    data = PersonalData()
    data.add_person({"name": "Kari Nordmann", "address": ["Storgata 12", "0155 Oslo"], "letter_address": None})
    data.add("+4795712345", "mobile")
    data.add("15108695088", "identity number")
    lines = [
        "sent to Kari Nordmann",
        "at Storgata 12 today",
        "number +47 957 12 345",
        "person 151086 95088",
        "a count of 3 4 and 2026-12-04 17:04:39",
    ]
    assert list(data.found_in(lines)) == [
        "line 1: name",
        "line 2: address",
        "line 3: mobile",
        "line 4: identity number",
    ]


def test_an_id_taken_in_by_another_shape_takes_no_other_id_s_place() -> None:
    """Ids are set aside while the patterns run; one an address ends in goes with the address, and the
    next comes back in its own place (it came back in the first one's, naming the wrong letter)."""
    first, second = "11111111-2222-3333-4444-555555555555", "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
    assert redact(f"letter {first}@x.no then letter {second} done") == f"letter [e-mail] then letter {second} done"


def test_a_function_s_log_level_turned_to_debug_does_not_reach_the_libraries_that_log_what_they_send(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """botocore's debug logs hold each request and answer in full (a phone number and its code, the pepper
    as Secrets Manager answers it), through the root handler, which this formatter does not mask: the
    functions' logger keeps them quiet, whatever level the runtime gives the root logger."""
    before = {name: logging.getLogger(name).level for name in observability.QUIET_LIBRARIES}
    try:
        observability.logger()
        with caplog.at_level(logging.DEBUG):  # the root logger at DEBUG, as the runtime sets it
            logging.getLogger("botocore.endpoint").debug(
                "Making request with params: %s", {"PhoneNumber": "+4791234567"}
            )
            logging.getLogger("urllib3.connectionpool").debug("Response body: %s", '{"SecretString": "pepper"}')
            logging.getLogger("botocore.endpoint").warning("a warning still goes through")
        assert [record.getMessage() for record in caplog.records] == ["a warning still goes through"]
    finally:
        for name, level in before.items():
            logging.getLogger(name).setLevel(level)


def test_the_client_s_address_and_other_secrets_are_masked_by_their_keys() -> None:
    """What Powertools' event logging, were it turned on, writes of a request: its client's address too
    (the access log holds none)."""
    request = {"requestContext": {"http": {"sourceIp": "192.0.2.10"}}, "headers": {"x-forwarded-for": "192.0.2.10"}}
    line = logged(lambda log: log.info("event", extra={"event": request, "pepper": "abc", "totp_secret": "def"}))
    assert "192.0.2.10" not in json.dumps(line)
    assert (line["pepper"], line["totp_secret"]) == (MASK, MASK)


class _RootLike(logging.Handler):
    """A handler on the root logger, as the Lambda runtime's, which writes records unmasked."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_no_setting_sends_the_logger_s_records_to_the_runtime_s_unmasked_handler(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Powertools keeps the logger's records from the root logger's handlers by a filter that
    POWERTOOLS_LOG_DEDUPLICATION_DISABLED leaves out: the runtime's handler would write them, unmasked."""
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", f"masking-{uuid.uuid4().hex}")  # a logger set up anew
    monkeypatch.setenv("POWERTOOLS_LOG_DEDUPLICATION_DISABLED", "true")
    runtime = _RootLike()
    logging.root.addHandler(runtime)
    try:
        log = observability.logger()
        log.addHandler(logging.NullHandler())  # (its own output is not what is looked at here)
        log.info("a record naming 01010012345")
    finally:
        logging.root.removeHandler(runtime)
    assert not [r for r in runtime.records if "01010012345" in r.getMessage()]


def test_metrics_are_written_whatever_powertools_dev_says(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """POWERTOOLS_DEV, Powertools' switch for verbose output, turns its metrics off: the alarms stand on ours."""
    monkeypatch.setenv("POWERTOOLS_DEV", "true")
    capsys.readouterr()
    observability.count("PrintDocumentsLeft")
    written = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [m["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"] for m in written] == ["PrintDocumentsLeft"]
    assert [m["PrintDocumentsLeft"] for m in written] == [[1.0]]
