"""A function's settings from its environment: typed, checked, and a mistake named by its variable."""

from __future__ import annotations

import pytest

from minid.settings import ContactReviewSettings, LoginSettings, PinLetterSettings, SettingsError
from tests.unit.fresh import modules_loaded

LOGIN = {
    "PEPPER_SECRET_ARN": "arn:aws:secretsmanager:eu-north-1:123456789012:secret:pepper",
    "USERS_TABLE": "users",
    "SESSIONS_TABLE": "sessions",
    "SESSION_IDLE_SECONDS": "900",
    "SESSION_ABSOLUTE_SECONDS": "28800",
    "NOTICE_QUEUE_URL": "https://sqs.eu-north-1.amazonaws.com/123456789012/notices",
    "CODE_QUEUE_URL": "https://sqs.eu-north-1.amazonaws.com/123456789012/codes",
    "REMINDER_QUEUE_URL": "https://sqs.eu-north-1.amazonaws.com/123456789012/reminders",
    "DATA_KEY_ARN": "arn:aws:kms:eu-north-1:123456789012:key/11111111-2222-3333-4444-555555555555",
    "NOTICE_PROOF_DELAY_SECONDS": "0",
    "ALLOW_SYNTHETIC_IDENTITY_NUMBERS": "false",
    "PUBLIC_DOMAIN": "minid.example",
    "SMS_SENDER_ID": "MinID",
    "EMAIL_SENDER": "noreply@minid.example",
    "EMAIL_CONFIGURATION_SET": "minid-email",
    "CHALLENGES_TABLE": "challenges",
    "CONTACT_REGISTER_TABLE": "contacts",
    "PIN_LETTERS_TABLE": "letters",
    "POPULATION_REGISTER_TABLE": "population",
    "SECURITY_EVENTS_TABLE": "events",
    "LOCKOUT_THRESHOLD": "5",
    "LOCKOUT_SECONDS": "3600",
    "CLIENT_IDENTITY_ATTEMPTS_PER_MINUTE": "30",
    "CLIENT_CODES_SENT_PER_HOUR": "20",
    "CODES_TO_PERSON_PER_HOUR": "10",
    "RESET_CODES_TO_PERSON_PER_DAY": "20",
    "ENROLMENT_PIN_GUESSES_PER_DAY": "30",
    "CLIENT_ENROLMENT_GUESSES_PER_HOUR": "20",
    "CLIENT_LETTER_ORDERS_PER_HOUR": "30",
    "AWS_REGION": "eu-north-1",  # the rest of a Lambda environment is not the settings' business
}


def test_the_variables_are_read_as_their_types() -> None:
    settings = LoginSettings.from_environ(LOGIN | {"ALLOW_SYNTHETIC_IDENTITY_NUMBERS": "true"})
    assert settings.users_table == "users"
    assert settings.session_idle_seconds == 900
    assert settings.lockout_threshold == 5
    assert settings.allow_synthetic_identity_numbers is True
    assert LoginSettings.from_environ(LOGIN).allow_synthetic_identity_numbers is False


@pytest.mark.parametrize(
    ("variable", "value", "told"),
    [
        ("LOCKOUT_THRESHOLD", "0", "`int` >= 1 - at `$.LOCKOUT_THRESHOLD`"),
        ("LOCKOUT_THRESHOLD", "five", "`int`, got `str` - at `$.LOCKOUT_THRESHOLD`"),
        ("NOTICE_PROOF_DELAY_SECONDS", "901", "`int` <= 900 - at `$.NOTICE_PROOF_DELAY_SECONDS`"),
        ("ALLOW_SYNTHETIC_IDENTITY_NUMBERS", "yes", "`bool`, got `str` - at `$.ALLOW_SYNTHETIC_IDENTITY_NUMBERS`"),
        ("SMS_SENDER_ID", "MinID-Norway", "length <= 11 - at `$.SMS_SENDER_ID`"),
    ],
)
def test_a_wrong_value_is_named_by_its_variable(variable: str, value: str, told: str) -> None:
    with pytest.raises(SettingsError, match=r"^LoginSettings: ") as raised:
        LoginSettings.from_environ(LOGIN | {variable: value})
    assert told in str(raised.value)


def test_a_missing_variable_is_named() -> None:
    environ = {name: value for name, value in LOGIN.items() if name != "CHALLENGES_TABLE"}
    with pytest.raises(SettingsError, match="missing required field `CHALLENGES_TABLE`"):
        LoginSettings.from_environ(environ)


def test_the_print_heartbeat_must_be_shorter_than_its_timeout() -> None:
    environ = LOGIN | {
        "IDEMPOTENCY_TABLE": "idempotency",
        "LETTER_WORKFLOW_ARN": "arn:aws:states:eu-north-1:123456789012:stateMachine:letters",
        "PRINT_TIMEOUT_SECONDS": "3600",
        "PRINT_HEARTBEAT_SECONDS": "600",
    }
    assert PinLetterSettings.from_environ(environ).print_heartbeat_seconds == 600
    with pytest.raises(SettingsError, match="PRINT_HEARTBEAT_SECONDS must be shorter than PRINT_TIMEOUT_SECONDS"):
        PinLetterSettings.from_environ(environ | {"PRINT_HEARTBEAT_SECONDS": "3600"})


def test_reading_settings_loads_no_pydantic() -> None:
    """The functions that answer no HTTP request need pydantic for nothing else (a cold start's 50 ms)."""
    code = f"import minid.wiring, minid.settings\nminid.settings.ContactReviewSettings.from_environ({LOGIN!r})"
    assert modules_loaded(code, "pydantic") == []
    assert ContactReviewSettings.from_environ(LOGIN).contact_register_table == "contacts"
