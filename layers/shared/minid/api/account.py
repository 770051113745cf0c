"""Request and response models of login, sessions, the `me` routes and password resets."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StrictBool, StringConstraints

from minid.api.models import RequestModel, ResponseModel, SixDigits
from minid.domain.contacts import ContactRecord, Language
from minid.domain.events import SecurityEvent
from minid.domain.letters.model import PinLetter

Password = Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class LoginRequest(RequestModel):
    identity_number: str = Field(max_length=64)
    password: Password
    second_factor: Literal["sms", "pin", "totp"] | None = Field(
        default=None, description="Default: sms with a verified mobile, else totp where enrolled, else pin"
    )


class LoginStartedView(ResponseModel):
    login_id: str
    second_factor: Literal["sms", "pin", "totp"]
    pin_index: int | None = Field(default=None, description="For pin: the number of the PIN code asked for")
    expires_in: int


class CodeRequest(RequestModel):
    code: SixDigits


class TokenView(ResponseModel):
    access_token: str = Field(description="Opaque, 256 bits; send it as Authorization: Bearer <token>")
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105  (the token's type, not a token)
    expires_in: int = Field(description="Seconds to the session's absolute end; it also ends after 30 idle minutes")
    acr: Literal["idporten-loa-substantial"] = "idporten-loa-substantial"
    amr: list[Literal["Minid-OTC", "Minid-PIN", "Minid-TOTP"]]
    auth_time: int = Field(description="When the person authenticated, in seconds since the epoch")


class ContactView(ResponseModel):
    mobile: str | None
    mobile_verified_at: datetime | None
    email: str | None
    email_verified_at: datetime | None
    reserved: bool
    language: Language
    updated_at: datetime
    confirmed_at: datetime | None
    confirmation_due: bool = Field(description="90 days without update or confirmation")
    stale: bool = Field(description="18 months without update or confirmation: not used for notices")

    @classmethod
    def of(cls, record: ContactRecord, now: datetime) -> ContactView:
        return cls(
            mobile=record.mobile,
            mobile_verified_at=record.mobile_verified_at,
            email=record.email,
            email_verified_at=record.email_verified_at,
            reserved=record.reserved,
            language=record.language,
            updated_at=record.updated_at,
            confirmed_at=record.confirmed_at,
            confirmation_due=record.confirmation_due(now),
            stale=record.stale(now),
        )


class MeView(ResponseModel):
    identity_number: str
    name: str
    contact: ContactView | None
    second_factors: list[Literal["sms", "pin", "totp"]]
    password_changed_at: datetime
    created_at: datetime


class EventView(ResponseModel):
    type: str
    at: datetime
    detail: dict[str, str]

    @classmethod
    def of(cls, event: SecurityEvent) -> EventView:
        return cls(type=event.type.value, at=event.at, detail=dict(event.detail))


class EventsView(ResponseModel):
    events: list[EventView]
    next_cursor: str | None = Field(description="Give it as ?cursor= for the next (older) page; null at the end")


class PasswordChange(RequestModel):
    current_password: Password
    new_password: Password


class TotpEnrolmentView(ResponseModel):
    secret: str = Field(description="Base32, for apps that cannot read the QR code of the URI")
    otpauth_uri: str


class PasswordResetRequest(RequestModel):
    identity_number: str = Field(max_length=64)


class PasswordResetStartedView(ResponseModel):
    reset_id: str
    pin_index: int
    second_factor: Literal["sms", "email"]
    expires_in: int


class PasswordResetCompletion(RequestModel):
    pin_code: SixDigits
    code: SixDigits
    new_password: Password


class PinLetterView(ResponseModel):
    letter_id: str
    status: Literal["ordered", "printing", "dispatched", "failed", "superseded", "blocked"]
    ordered_at: datetime
    dispatched_at: datetime | None
    codes_remaining: int

    @classmethod
    def of(cls, letter: PinLetter) -> PinLetterView:
        return cls(
            letter_id=letter.letter_id,
            status=letter.status.value,  # type: ignore[arg-type]  # refused orders are never shown
            ordered_at=letter.ordered_at,
            dispatched_at=letter.dispatched_at,
            codes_remaining=letter.codes_remaining,
        )


class PinLetterList(ResponseModel):
    letters: list[PinLetterView]


class ContactChange(RequestModel):
    mobile: str | None = Field(default=None, max_length=32, description="A new mobile number; null removes it")
    email: str | None = Field(default=None, max_length=320, description="A new e-mail address; null removes it")
    language: Language | None = None


class ContactVerification(RequestModel):
    channel: Literal["mobile", "email"]
    code: SixDigits


class Reservation(RequestModel):
    reserved: StrictBool = Field(description="True: reserved against digital communication from the public sector")
