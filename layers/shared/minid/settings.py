"""Each function's settings: its environment variables, read and validated once at cold start.

The names are the template's (template.yaml, Globals and each function's Environment).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator


class Settings(BaseModel):
    # built at first use: this module holds every function's settings, and a function reads only its own
    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Self:
        return cls.model_validate(dict(environ))


class NoticeSettings(Settings):
    notice_queue_url: str = Field(alias="NOTICE_QUEUE_URL")
    # how long a notice queued before its change waits (in the queue) before it is first delivered
    notice_proof_delay_seconds: int = Field(alias="NOTICE_PROOF_DELAY_SECONDS", ge=0, le=900)


class PepperSettings(Settings):
    pepper_secret_arn: str = Field(alias="PEPPER_SECRET_ARN")


class SessionSettings(PepperSettings):
    users_table: str = Field(alias="USERS_TABLE")
    sessions_table: str = Field(alias="SESSIONS_TABLE")
    session_idle_seconds: PositiveInt = Field(alias="SESSION_IDLE_SECONDS")
    session_absolute_seconds: PositiveInt = Field(alias="SESSION_ABSOLUTE_SECONDS")


class PinLetterSettings(SessionSettings):
    allow_synthetic_identity_numbers: bool = Field(alias="ALLOW_SYNTHETIC_IDENTITY_NUMBERS")
    pin_letters_table: str = Field(alias="PIN_LETTERS_TABLE")
    security_events_table: str = Field(alias="SECURITY_EVENTS_TABLE")
    idempotency_table: str = Field(alias="IDEMPOTENCY_TABLE")
    letter_workflow_arn: str = Field(alias="LETTER_WORKFLOW_ARN")
    print_timeout_seconds: PositiveInt = Field(alias="PRINT_TIMEOUT_SECONDS")
    print_heartbeat_seconds: PositiveInt = Field(alias="PRINT_HEARTBEAT_SECONDS")

    @model_validator(mode="after")
    def _heartbeat_within_timeout(self) -> Self:
        if self.print_heartbeat_seconds >= self.print_timeout_seconds:
            raise ValueError("PRINT_HEARTBEAT_SECONDS must be shorter than PRINT_TIMEOUT_SECONDS")
        return self


class LetterWorkflowSettings(PepperSettings, NoticeSettings):
    pin_letters_table: str = Field(alias="PIN_LETTERS_TABLE")
    population_register_table: str = Field(alias="POPULATION_REGISTER_TABLE")
    contact_register_table: str = Field(alias="CONTACT_REGISTER_TABLE")
    security_events_table: str = Field(alias="SECURITY_EVENTS_TABLE")
    print_bucket: str = Field(alias="PRINT_BUCKET")
    data_key_arn: str = Field(alias="DATA_KEY_ARN")


class PrintCallbackSettings(Settings):
    pin_letters_table: str = Field(alias="PIN_LETTERS_TABLE")
    letter_workflow_arn: str = Field(alias="LETTER_WORKFLOW_ARN")
    print_provider_role_name: str = Field(alias="PRINT_PROVIDER_ROLE_NAME")


class NotifierSettings(Settings):
    contact_register_table: str = Field(alias="CONTACT_REGISTER_TABLE")
    challenges_table: str = Field(alias="CHALLENGES_TABLE")
    security_events_table: str = Field(alias="SECURITY_EVENTS_TABLE")
    sms_sender_id: str = Field(alias="SMS_SENDER_ID", max_length=11)
    email_sender: str = Field(alias="EMAIL_SENDER")


class EnrolmentSettings(PepperSettings, NoticeSettings):
    allow_synthetic_identity_numbers: bool = Field(alias="ALLOW_SYNTHETIC_IDENTITY_NUMBERS")
    public_domain: str = Field(alias="PUBLIC_DOMAIN")
    sms_sender_id: str = Field(alias="SMS_SENDER_ID", max_length=11)
    email_sender: str = Field(alias="EMAIL_SENDER")
    users_table: str = Field(alias="USERS_TABLE")
    contact_register_table: str = Field(alias="CONTACT_REGISTER_TABLE")
    pin_letters_table: str = Field(alias="PIN_LETTERS_TABLE")
    challenges_table: str = Field(alias="CHALLENGES_TABLE")
    population_register_table: str = Field(alias="POPULATION_REGISTER_TABLE")
    security_events_table: str = Field(alias="SECURITY_EVENTS_TABLE")


class LoginSettings(SessionSettings, NoticeSettings):
    allow_synthetic_identity_numbers: bool = Field(alias="ALLOW_SYNTHETIC_IDENTITY_NUMBERS")
    public_domain: str = Field(alias="PUBLIC_DOMAIN")
    sms_sender_id: str = Field(alias="SMS_SENDER_ID", max_length=11)
    email_sender: str = Field(alias="EMAIL_SENDER")
    challenges_table: str = Field(alias="CHALLENGES_TABLE")
    contact_register_table: str = Field(alias="CONTACT_REGISTER_TABLE")
    pin_letters_table: str = Field(alias="PIN_LETTERS_TABLE")
    population_register_table: str = Field(alias="POPULATION_REGISTER_TABLE")
    security_events_table: str = Field(alias="SECURITY_EVENTS_TABLE")
    lockout_threshold: PositiveInt = Field(alias="LOCKOUT_THRESHOLD")
    lockout_seconds: PositiveInt = Field(alias="LOCKOUT_SECONDS")
    client_identity_attempts_per_minute: PositiveInt = Field(alias="CLIENT_IDENTITY_ATTEMPTS_PER_MINUTE")
    client_codes_sent_per_hour: PositiveInt = Field(alias="CLIENT_CODES_SENT_PER_HOUR")


class ContactSettings(SessionSettings, NoticeSettings):
    public_domain: str = Field(alias="PUBLIC_DOMAIN")
    sms_sender_id: str = Field(alias="SMS_SENDER_ID", max_length=11)
    email_sender: str = Field(alias="EMAIL_SENDER")
    challenges_table: str = Field(alias="CHALLENGES_TABLE")
    contact_register_table: str = Field(alias="CONTACT_REGISTER_TABLE")
    security_events_table: str = Field(alias="SECURITY_EVENTS_TABLE")


class ContactReviewSettings(NoticeSettings):
    contact_register_table: str = Field(alias="CONTACT_REGISTER_TABLE")
    security_events_table: str = Field(alias="SECURITY_EVENTS_TABLE")
