"""Request and response models of the contact register's routes (the contact function; the login
function's `me` shows the contact record too)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, StrictBool

from minid.api.models import Moment, RequestModel, ResponseModel, SixDigits
from minid.domain.contacts import ContactRecord, Language


class ContactView(ResponseModel):
    mobile: str | None
    mobile_verified_at: Moment | None
    email: str | None
    email_verified_at: Moment | None
    reserved: bool
    language: Language
    updated_at: Moment
    confirmed_at: Moment | None
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


class ContactChange(RequestModel):
    mobile: str | None = Field(default=None, max_length=32, description="A new mobile number; null removes it")
    email: str | None = Field(default=None, max_length=320, description="A new e-mail address; null removes it")
    language: Language | None = None


class ContactVerification(RequestModel):
    channel: Literal["mobile", "email"]
    code: SixDigits


class Reservation(RequestModel):
    reserved: StrictBool = Field(description="True: reserved against digital communication from the public sector")
