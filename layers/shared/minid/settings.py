"""Each function's settings: its environment variables, read and validated once at cold start.

The names are the template's (template.yaml, Globals and each function's Environment): each field is
its variable's name in lower case.

Checked by msgspec, not pydantic: a function that answers no HTTP request (the notifier, the daily
review) needs pydantic for nothing else, and importing it is about 50 ms of a cold start, msgspec's
about 3 (`make bench`). The settings are Structs (as every record: minid.values), so each inherits from
one other; the functions that queue notices declare the two notice variables themselves, and the
wiring takes any settings with them (`NoticeSettings`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Protocol, Self

import msgspec

PositiveInt = Annotated[int, msgspec.Meta(gt=0)]
SenderId = Annotated[str, msgspec.Meta(max_length=11)]  # an alphanumeric SMS sender id
# how long a notice queued before its change waits (in the queue) before it is first delivered
ProofDelay = Annotated[int, msgspec.Meta(ge=0, le=900)]
_QUOTED_NAME = re.compile(r"`(\w+)`|\$\.(\w+)")


class SettingsError(ValueError):
    """The environment does not hold a function's settings (a deployment's mistake)."""


class Settings(msgspec.Struct, frozen=True):
    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Self:
        variables = {name.lower(): value for name, value in environ.items()}
        try:
            return msgspec.convert(variables, cls, strict=False)  # strict=False: numbers and flags from text
        except msgspec.ValidationError as error:
            raise SettingsError(f"{cls.__name__}: {_in_variable_names(cls, str(error))}") from None


def _in_variable_names(settings: type[Settings], message: str) -> str:
    """msgspec's message with the fields named as their environment variables."""
    names = set(settings.__struct_fields__)

    def named(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in names:
            return match.group(0)
        return f"`{name.upper()}`" if match.group(1) else f"$.{name.upper()}"

    return _QUOTED_NAME.sub(named, message)


class NoticeSettings(Protocol):
    """The settings of a function that queues notices (on the queue it names)."""

    @property
    def notice_proof_delay_seconds(self) -> int: ...

    @property
    def data_key_arn(self) -> str: ...  # seals a notice's own recipients (KMS)


class ClientLimitSettings(Protocol):
    """The settings of a function that limits what one client, or one person's codes, may do."""

    @property
    def challenges_table(self) -> str: ...  # where the counts are kept

    @property
    def client_identity_attempts_per_minute(self) -> int: ...

    @property
    def client_codes_sent_per_hour(self) -> int: ...

    @property
    def codes_to_person_per_hour(self) -> int: ...


class PepperSettings(Settings, frozen=True):
    pepper_secret_arn: str


class SessionSettings(PepperSettings, frozen=True):
    users_table: str
    sessions_table: str
    security_events_table: str  # a logout is in the person's history
    session_idle_seconds: PositiveInt
    session_absolute_seconds: PositiveInt


class PinLetterSettings(SessionSettings, frozen=True):
    notice_queue_url: str  # the person told of a block of their letters
    notice_proof_delay_seconds: ProofDelay
    data_key_arn: str
    allow_synthetic_identity_numbers: bool
    pin_letters_table: str
    idempotency_table: str
    challenges_table: str
    client_letter_orders_per_hour: PositiveInt
    letter_workflow_arn: str
    print_timeout_seconds: PositiveInt
    print_heartbeat_seconds: PositiveInt

    def __post_init__(self) -> None:
        if self.print_heartbeat_seconds >= self.print_timeout_seconds:
            raise ValueError("PRINT_HEARTBEAT_SECONDS must be shorter than PRINT_TIMEOUT_SECONDS")


class LetterWorkflowSettings(PepperSettings, frozen=True):
    notice_queue_url: str
    notice_proof_delay_seconds: ProofDelay
    pin_letters_table: str
    population_register_table: str
    contact_register_table: str
    security_events_table: str
    print_bucket: str
    data_key_arn: str


class PrintCallbackSettings(Settings, frozen=True):
    pin_letters_table: str
    letter_workflow_arn: str
    print_provider_role_name: str
    # the stack's own account, where PrintProviderRole is (not PrintProviderAccountId, the provider's, which
    # assumes the role from there)
    print_provider_role_account: str


class NotifierSettings(Settings, frozen=True):
    notice_queue_url: str
    code_queue_url: str  # a reset's codes, in a queue of their own
    reminder_queue_url: str  # the daily review's reminders, in a queue of their own
    contact_register_table: str
    population_register_table: str  # the dead are told nothing
    challenges_table: str
    security_events_table: str
    sms_sender_id: SenderId
    email_sender: str
    email_configuration_set: str  # (template.yaml: EmailConfigurationSet)
    data_key_arn: str
    public_domain: str  # named in a reset code's SMS (WebOTP)


class EnrolmentSettings(PepperSettings, frozen=True):
    notice_queue_url: str
    notice_proof_delay_seconds: ProofDelay
    allow_synthetic_identity_numbers: bool
    public_domain: str
    sms_sender_id: SenderId
    email_sender: str
    email_configuration_set: str  # (template.yaml: EmailConfigurationSet)
    users_table: str
    contact_register_table: str
    pin_letters_table: str
    challenges_table: str
    population_register_table: str
    security_events_table: str
    client_identity_attempts_per_minute: PositiveInt
    client_codes_sent_per_hour: PositiveInt
    codes_to_person_per_hour: PositiveInt
    enrolment_pin_guesses_per_day: PositiveInt
    client_enrolment_guesses_per_hour: PositiveInt
    data_key_arn: str


class LoginSettings(SessionSettings, frozen=True):
    notice_queue_url: str
    code_queue_url: str  # a reset's codes, in a queue of their own (never behind the notices)
    notice_proof_delay_seconds: ProofDelay
    allow_synthetic_identity_numbers: bool
    public_domain: str
    sms_sender_id: SenderId
    challenges_table: str
    contact_register_table: str
    pin_letters_table: str
    population_register_table: str
    lockout_threshold: PositiveInt
    lockout_seconds: PositiveInt
    client_identity_attempts_per_minute: PositiveInt
    client_codes_sent_per_hour: PositiveInt
    codes_to_person_per_hour: PositiveInt
    reset_codes_to_person_per_day: PositiveInt
    data_key_arn: str


class ContactSettings(SessionSettings, frozen=True):
    notice_queue_url: str
    notice_proof_delay_seconds: ProofDelay
    public_domain: str
    sms_sender_id: SenderId
    email_sender: str
    email_configuration_set: str  # (template.yaml: EmailConfigurationSet)
    challenges_table: str
    contact_register_table: str
    codes_to_person_per_hour: PositiveInt
    data_key_arn: str


class ContactReviewSettings(Settings, frozen=True):
    reminder_queue_url: str  # never before the notices: a queue of their own
    notice_proof_delay_seconds: ProofDelay
    contact_register_table: str
    population_register_table: str
    security_events_table: str
    data_key_arn: str
