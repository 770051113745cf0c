"""Mobile numbers (phonenumbers) and e-mail addresses (email-validator) as the register keeps them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from msgspec.structs import replace

from minid.domain.codes import RateLimited, ResendPolicy
from minid.domain.contacts import InvalidContact, email_for_sending, normalize_email, normalize_mobile, same_mailbox
from minid.domain.errors import Conflict


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("91234567", "+4791234567"),
        ("912 34 567", "+4791234567"),
        ("+47 412 34 567", "+4741234567"),
        ("0047 91234567", "+4791234567"),
        ("+46 70 123 45 67", "+46701234567"),
        ("+48 601 234 567", "+48601234567"),
        ("+370 612 34567", "+37061234567"),
    ],
)
def test_mobile_numbers_are_kept_in_e164(raw: str, e164: str) -> None:
    assert normalize_mobile(raw) == e164


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("22 33 44 55", "not a mobile"),  # an Oslo landline
        ("800 30 300", "not a mobile"),  # a freephone number
        ("1234", "does not exist"),
        ("+47 123 45 678", "does not exist"),
        ("ring meg", "not a phone number"),
        ("", "not a phone number"),
        ("+47 9123ABCD", "has letters"),  # not 91232223, a keypad's digits (a stranger's phone)
        ("912 34 56O", "has letters"),  # a capital O for a zero
        ("91234567 x12", "has letters"),
        ("91234567#12", "has an extension"),  # a mistyped digit: not +4791234567, another's phone
        ("9123456,7", "has an extension"),
        ("+870 773 111 632", "of a country"),  # Inmarsat: a mobile, of no country
        ("+881 631 234 567", "of a country"),  # a satellite phone
    ],
)
def test_numbers_that_cannot_take_sms_are_refused(raw: str, message: str) -> None:
    with pytest.raises(InvalidContact) as refused:
        normalize_mobile(raw)
    assert message in refused.value.errors[0].message
    assert refused.value.errors[0].field == "mobile"


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [("kari@example.no", "kari@example.no"), ("Kari.Nordmann@EXAMPLE.NO ", "Kari.Nordmann@example.no")],
)
def test_email_addresses_are_normalised(raw: str, normalized: str) -> None:
    assert normalize_email(raw) == normalized


@pytest.mark.parametrize(
    "raw", ["kari", "kari@", "@example.no", "kari@@example.no", "kari@example", "kari @example.no"]
)
def test_addresses_that_are_not_addresses_are_refused(raw: str) -> None:
    with pytest.raises(InvalidContact) as refused:
        normalize_email(raw)
    assert refused.value.errors[0].field == "email"


@pytest.mark.parametrize("raw", ["kari@nordـmann.no", "kari@nordmann・.no", "kari@\u0661\u0662nordmann.no"])
def test_a_refused_address_is_not_quoted_back(raw: str) -> None:
    """email-validator quotes the label it refuses, often a surname: the 422 says what is wrong, not it."""
    with pytest.raises(InvalidContact) as refused:
        normalize_email(raw)
    message = refused.value.errors[0].message
    assert not re.search(r"'[^']{2,}'", message)  # no part of the address quoted
    assert "after the @-sign" in message


@pytest.mark.parametrize(
    ("raw", "told"),
    [
        ("kari@x.no,bob@y.no", "invalid characters: ',', '@'."),
        ("kari@o'brien@x.no", "invalid characters: \"'\", '@'."),  # an apostrophe, as Python quotes it
    ],
)
def test_characters_a_refusal_names_are_told_as_named(raw: str, told: str) -> None:
    """email-validator lists the characters it refuses, each quoted: the list is told, not taken for a
    quoted part of the address (the ", " between two of them)."""
    with pytest.raises(InvalidContact) as refused:
        normalize_email(raw)
    assert refused.value.errors[0].message.endswith(told)


@pytest.mark.parametrize("raw", ['"x"kari.nordmann@nrk.no', '"Kari" Nordmann <kari@x.no>'])
def test_what_follows_a_closing_quote_is_not_spelt_back(raw: str) -> None:
    """email-validator lists every character after a closing quote, in order: the rest of the address (a
    surname), spelt out one quoted character at a time."""
    with pytest.raises(InvalidContact) as refused:
        normalize_email(raw)
    assert refused.value.errors[0].message == "The address has characters after a closing quote."


def test_an_address_before_its_at_in_another_script_is_refused_for_what_it_is() -> None:
    """SES sends no SMTPUTF8 mail: taken, it would fail at every send (a 500 then, not a 422 now)."""
    with pytest.raises(InvalidContact) as refused:
        normalize_email("åse@example.no")
    assert refused.value.errors[0].field == "email"
    assert "before the @-sign" in refused.value.errors[0].message


def test_an_internationalised_domain_is_kept_as_written_and_sent_to_in_ascii() -> None:
    assert normalize_email("Kari@Blåbær.NO") == "Kari@blåbær.no"
    assert normalize_email("kari@xn--blbr-roah.no") == "kari@blåbær.no"  # one address, however written
    assert email_for_sending("kari@blåbær.no") == "kari@xn--blbr-roah.no"
    assert email_for_sending("kari@example.no") == "kari@example.no"


@pytest.mark.parametrize(
    ("one", "other", "same"),
    [
        ("Kari.Nordmann@Example.no", "kari.nordmann@example.no", True),  # the case before the @ aside
        ("kari@straße.de", "kari@strasse.de", False),  # two domains, which casefolding would make one
        ("kari@example.no", "kari@example.com", False),
        ("kari@example.no", "kari2@example.no", False),
    ],
)
def test_one_mailbox_is_told_from_another(one: str, other: str, same: bool) -> None:
    assert same_mailbox(normalize_email(one), normalize_email(other)) is same
    assert same_mailbox(None, normalize_email(other)) is False


def test_resends_are_limited() -> None:
    policy = ResendPolicy()
    now = datetime(2026, 11, 22, tzinfo=UTC)
    policy.check(0, now - timedelta(seconds=30), now)
    with pytest.raises(RateLimited) as too_soon:
        policy.check(0, now - timedelta(seconds=10), now)
    assert 1 <= too_soon.value.retry_after <= 21
    with pytest.raises(Conflict):  # spent for good: no wait helps, so no 429 with a Retry-After
        policy.check(3, now - timedelta(hours=1), now)
    # with less than a minute left of what the code is for, none is sent (it would expire on the way)
    policy.check(0, now - timedelta(seconds=30), now, ends_at=now + timedelta(minutes=1))
    with pytest.raises(Conflict, match="Too little time"):
        policy.check(0, now - timedelta(seconds=30), now, ends_at=now + timedelta(seconds=59))
    with pytest.raises(Conflict, match="Too little time"):  # not a 429 whose wait would end in this 409
        policy.check(0, now - timedelta(seconds=10), now, ends_at=now + timedelta(seconds=59))


def test_the_review_comes_16_months_after_the_last_update_or_confirmation() -> None:
    from minid.domain.contacts import ContactRecord, Language  # noqa: PLC0415

    updated = datetime(2026, 1, 1, tzinfo=UTC)  # 16 months (487 days) on: 2027-05-03, 02:00 in Norway
    record = ContactRecord(None, None, None, None, Language.BOKMAL, False, updated, None)
    assert record.review_on().isoformat() == "2027-05-04"  # the first day that begins after it
    assert record.stale_review_on().isoformat() == "2027-07-04"  # 548 days: 2027-07-03, 02:00 in Norway
    confirmed = ContactRecord(None, None, None, None, Language.BOKMAL, False, updated, updated + timedelta(days=30))
    assert confirmed.review_on().isoformat() == "2027-06-03"
    late = replace(record, updated_at=datetime(2026, 1, 1, 22, 30, tzinfo=UTC))  # 23:30 in Norway
    assert late.review_on().isoformat() == "2027-05-05"
    assert not record.stale(updated + timedelta(days=547))
    assert record.stale(updated + timedelta(days=549))
    assert record.confirmation_due(updated + timedelta(days=91))
