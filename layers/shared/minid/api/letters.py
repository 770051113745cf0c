"""Request and response models of the PIN-letter routes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from minid.api.models import MAX_BODY_BYTES, Moment, RequestModel, ResponseModel
from minid.domain.letters.model import PinLetter

ORDER_ACCEPTED = (
    "Thank you. If the identity number belongs to someone who can be sent a PIN code letter, the letter "
    "is posted to their address in the population register and arrives within a few working days."
)


class PinLetterOrder(RequestModel):
    identity_number: str = Field(
        max_length=64,
        description="11 digits: a fødselsnummer or D-number",
        examples=["15908695043"],  # a synthetic number (month + 80): valid where the stage allows them
    )


class OrderAccepted(ResponseModel):
    message: str = Field(description="The same for every valid identity number")


class PrintStatusReport(RequestModel):
    status: Literal["dispatched", "failed"]
    # API.md sets no limit, and the reason is not kept, logged or passed on: a provider that says much (a
    # stack trace) is not kept from reporting its failure. Half the body's limit, so that one longer still
    # is refused for its length (422), not as a body too large (413); and a length given makes it text, so
    # that what is not a character at all (a lone surrogate) is refused.
    reason: str | None = Field(
        default=None, max_length=MAX_BODY_BYTES // 2, description="Why printing or posting failed (not kept)"
    )


class PinLetterView(ResponseModel):
    letter_id: str
    status: Literal["ordered", "printing", "dispatched", "failed", "superseded", "blocked"]
    ordered_at: Moment
    dispatched_at: Moment | None
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
