"""The failures the domain names. Each maps to one problem type in `minid.api.problems`."""

from __future__ import annotations

from minid.values import Value


class FieldError(Value, frozen=True):
    """What is wrong with one field of a request, in words a citizen understands."""

    field: str
    message: str


def carry_notes(to: BaseException, of: BaseException) -> None:
    """`of`'s notes (what its clean-up left undone) added to `to`, the error raised in its place."""
    for note in getattr(of, "__notes__", ()):
        to.add_note(note)


class DomainError(Exception):
    """Base of every failure the domain names; never raised itself.

    `detail` is shown to the client, so it must never hold a secret or personal data.
    """

    detail: str = "The request could not be completed."

    def __init__(self, detail: str | None = None, *, errors: tuple[FieldError, ...] = ()) -> None:
        self.detail = detail or type(self).detail
        self.errors = errors
        super().__init__(self.detail)


class InvalidIdentityNumber(DomainError):
    detail = "The identity number is not valid."


class InvalidInput(DomainError):
    """A field well-formed to the route's model, but not a value the domain gives or takes (a cursor that
    was never given out, say)."""

    detail = "The request is not valid."


class NotFound(DomainError):
    detail = "There is no such resource."


class Conflict(DomainError):
    detail = "The request conflicts with the current state of the resource."


class AuthenticationFailed(DomainError):
    """The same answer for every reason, so that it tells nothing about the person."""

    detail = "The details given do not match. Check them and try again."
