"""Request and response models of the enrolment routes."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, StringConstraints, model_validator

from minid.api.models import NewPassword, RequestModel, ResponseModel, SixDigits
from minid.domain.contacts import Language
from minid.domain.notices import ContactField as ContactChannel

PinIndex = Annotated[str, StringConstraints(pattern=r"^(?:[1-9]|1[0-9]|20)$")]


class EnrolmentRequest(RequestModel):
    identity_number: str = Field(max_length=64, description="11 digits: a fødselsnummer or D-number")


class EnrolmentStarted(ResponseModel):
    enrolment_id: str
    pin_indices: list[int] = Field(min_length=2, max_length=2, description="The numbers of the two PIN codes asked for")
    expires_in: int = Field(description="Seconds the enrolment stays open")


class EnrolmentCompletion(RequestModel):
    pin_codes: dict[PinIndex, SixDigits] = Field(
        min_length=2, max_length=2, description='The two codes asked for, by their numbers: {"3": "123456", ...}'
    )
    password: NewPassword
    mobile: str | None = Field(default=None, max_length=32, description="A mobile number; 8 digits are Norwegian")
    email: str | None = Field(default=None, max_length=320)
    language: Language | None = Field(
        default=None,
        description="For the contact register and notices; without it, the PIN letter's language (the person's "
        "choice when the letter was ordered; English for a letter abroad, else bokmål)",
    )


class VerificationSent(ResponseModel):
    verification_sent_to: list[ContactChannel]


class EnrolmentVerification(RequestModel):
    mobile_code: SixDigits | None = None
    email_code: SixDigits | None = None

    @model_validator(mode="after")
    def _a_code(self) -> Self:
        if self.mobile_code is None and self.email_code is None:
            raise ValueError("Give the code sent to the mobile, to the e-mail address, or both.")
        return self


class EnrolmentState(ResponseModel):
    status: Literal["active", "verifying"]
    remaining: list[ContactChannel] = Field(default_factory=list, description="Contacts still to verify")
