"""The contact register (kontaktregisteret): a person's mobile and e-mail, as public agencies use them."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Protocol

from minid.domain.errors import DomainError, FieldError
from minid.domain.events import SecurityEvent
from minid.domain.keys import PersonKey
from minid.domain.time import date_in_norway
from minid.values import Value

CONFIRMATION_DUE_AFTER = timedelta(days=90)
# At 16 months without an update or confirmation the person is reminded; at 18 months the contact is
# stale and not used for notices, as the register's rules say.
REMIND_AFTER = timedelta(days=487)
STALE_AFTER = timedelta(days=548)


class Language(StrEnum):
    BOKMAL = "nb"
    NYNORSK = "nn"
    ENGLISH = "en"


class ContactRecord(Value, frozen=True):
    __hidden__ = frozenset({"mobile", "email"})  # left out of repr

    mobile: str | None  # E.164
    mobile_verified_at: datetime | None
    email: str | None
    email_verified_at: datetime | None
    language: Language
    reserved: bool
    updated_at: datetime
    confirmed_at: datetime | None

    @property
    def last_confirmed(self) -> datetime:
        return max(self.updated_at, self.confirmed_at or self.updated_at)

    def stale(self, now: datetime) -> bool:
        return now - self.last_confirmed > STALE_AFTER

    def confirmation_due(self, now: datetime) -> bool:
        return now - self.last_confirmed > CONFIRMATION_DUE_AFTER

    def review_on(self) -> date:
        """The day the daily review reminds the person: the first day in Norway that begins after the
        reminder is due, so that the review finds it due whatever the hour it runs at."""
        return _day_after(self.last_confirmed + REMIND_AFTER)

    def stale_review_on(self) -> date:
        """The day the daily review marks the record stale, likewise."""
        return _day_after(self.last_confirmed + STALE_AFTER)

    def mobile_for_codes(self) -> str | None:
        """The mobile number a one-time code the person asks for may go to (a login's, a reset's): verified,
        the record stale or not (a stale record must not shut its owner out; unlike `verified_mobile`)."""
        return self.mobile if self.mobile and self.mobile_verified_at else None

    def email_for_codes(self) -> str | None:
        """The e-mail address a one-time code the person asks for may go to, likewise."""
        return self.email if self.email and self.email_verified_at else None

    def verified_mobile(self, now: datetime) -> str | None:
        """The mobile number notices may go to: verified, and the record not stale."""
        return None if self.stale(now) else self.mobile_for_codes()

    def verified_email(self, now: datetime) -> str | None:
        return None if self.stale(now) else self.email_for_codes()


class ContactRegister(Protocol):
    def find(self, person: PersonKey) -> ContactRecord | None: ...


class ContactRegisterWriter(ContactRegister, Protocol):
    def due_for_review(self, day: date) -> Iterator[tuple[PersonKey, ContactRecord]]:
        """The records whose review falls on `day`, read by the index on the review date a page at a time
        as they are taken (a day of a national register may hold thousands: never all at once). As the
        review needs them: their update, confirmation and reservation, without their contacts."""
        ...

    def schedule_review(
        self,
        person: PersonKey,
        reviewed: tuple[date, ContactRecord],
        day: date | None,
        marked_stale_at: datetime | None,
        events: Sequence[SecurityEvent] = (),
    ) -> bool:
        """The day the review next looks at the record (None: marked stale at `marked_stale_at`, and not
        looked at again), with the events that record why, at once; only while the record is still the one
        reviewed, due on the day it was found due (`reviewed`: the index is read eventually consistent, and
        the person may confirm it meanwhile). False, writing nothing, when it is not."""
        ...

    def last_reviewed(self) -> date | None:
        """The last day the daily review went through to its end (None: it never has)."""
        ...

    def reviewed_through(self, day: date) -> None:
        """The daily review went through every day up to `day` (a later day already noted stays)."""
        ...


class InvalidContact(DomainError):
    detail = "The mobile number or e-mail address cannot be used."


def _day_after(moment: datetime) -> date:
    return date_in_norway(moment) + timedelta(days=1)


def normalize_mobile(raw: str) -> str:
    """A mobile number in E.164. Eight digits without a prefix are Norwegian; SMS needs a mobile."""
    import phonenumbers  # noqa: PLC0415  (loaded when a number is given, not at cold start)

    field = "mobile"
    # phonenumbers reads letters as a keypad's digits ("9123ABCD" is 91232223): a letter typed by mistake
    # would send a code to a stranger
    if any(character.isalpha() for character in raw):
        raise InvalidContact(errors=(FieldError(field, "This is not a phone number: it has letters."),))
    try:
        number = phonenumbers.parse(raw.strip(), "NO")
    except phonenumbers.NumberParseException:
        raise InvalidContact(errors=(FieldError(field, "This is not a phone number."),)) from None
    if number.extension:  # ("91234567#12", "91234567,12"): a mistyped digit, read as a number and its extension
        raise InvalidContact(errors=(FieldError(field, "This is not a mobile number: it has an extension."),))
    if not phonenumbers.is_valid_number(number):
        raise InvalidContact(errors=(FieldError(field, "This phone number does not exist."),))
    # of no country (+870 Inmarsat, +881 satellite phones, +882 and +883 international networks): costly to
    # send to, at anyone's asking, and seldom a person's phone for codes
    if number.country_code in phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS:
        raise InvalidContact(
            errors=(FieldError(field, "This is not a mobile number of a country (a satellite phone, say)."),)
        )
    if phonenumbers.number_type(number) not in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        raise InvalidContact(errors=(FieldError(field, "This is not a mobile number, and codes come by SMS."),))
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def normalize_email(raw: str) -> str:
    """An e-mail address as email-validator normalises it (the domain in lower case, IDNA), one that
    SES can send to: its part before the @ in ASCII (SES has no SMTPUTF8), its domain in any script
    (sent in its ASCII form: `email_for_sending`)."""
    from email_validator import EmailNotValidError, validate_email  # noqa: PLC0415

    try:
        # strict: the lengths of RFC 5321 too (64 octets before the @)
        checked = validate_email(raw.strip(), check_deliverability=False, strict=True, allow_smtputf8=False)
    except EmailNotValidError as error:
        raise InvalidContact(errors=(FieldError("email", _unquoted(str(error))),)) from None
    return str(checked.normalized)


def same_mailbox(one: str | None, other: str | None) -> bool:
    """Whether two addresses as normalize_email gives them are one mailbox: the same, but for the case of
    the part before the @ (ASCII: RFC 5321 lets a server tell such parts apart; none a person has does).
    The domains as normalized, exactly: casefolding would make two domains one ("straße" and "strasse")."""
    if one is None or other is None:
        return one == other
    local, _, domain = one.rpartition("@")
    other_local, _, other_domain = other.rpartition("@")
    return local.lower() == other_local.lower() and domain == other_domain


def _unquoted(message: str) -> str:
    """email-validator's message without the parts of the address it quotes (a domain's label is often a
    name): what is wrong, and the characters it names ('å', and "'" as Python quotes it), stay. Its list
    of the characters after a closing quote is the rest of the address, in order: not told."""
    if message.startswith("Extra character(s) found after close quote"):
        return "The address has characters after a closing quote."
    # each quoted part in turn, from the left: the ", " between two characters quoted (',', '@') is no part
    return re.sub(r"\"'\"|'[^']*'", lambda quoted: quoted[0] if len(quoted[0]) == 3 else "the address", message)


def email_for_sending(address: str) -> str:
    """A normalised address as mail servers take it: an internationalised domain in its ASCII form
    (kari@blåbær.no -> kari@xn--blbr-roah.no); shown to the person as they wrote it."""
    from email_validator import validate_email  # noqa: PLC0415

    ascii_email = validate_email(address, check_deliverability=False, allow_smtputf8=False).ascii_email
    if ascii_email is None:  # not for an address normalize_email took
        raise ValueError("the address has no ASCII form")
    return str(ascii_email)
