"""Request and response models of login, sessions, the `me` routes and password resets (the login function)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from minid.api.contact import ContactView
from minid.api.models import Moment, NewPassword, RequestModel, ResponseModel, SixDigits
from minid.domain.events import SecurityEvent

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
    pin_index: int | None = Field(  # API.md's `"pin_index"?`: in the body for pin only, not as null
        default=None, exclude_if=lambda index: index is None, description="For pin only: the PIN code's number"
    )
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


class MeView(ResponseModel):
    identity_number: str
    name: str
    contact: ContactView | None
    second_factors: list[Literal["sms", "pin", "totp"]]
    password_changed_at: Moment
    created_at: Moment


class EventView(ResponseModel):
    type: str
    at: Moment
    detail: dict[str, str]

    @classmethod
    def of(cls, event: SecurityEvent) -> EventView:
        return cls(type=event.type.value, at=event.at, detail=dict(event.detail))


class EventsView(ResponseModel):
    events: list[EventView]
    next_cursor: str | None = Field(description="Give it as ?cursor= for the next (older) page; null at the end")


class PasswordChange(RequestModel):
    current_password: Password
    new_password: NewPassword


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
    new_password: NewPassword
