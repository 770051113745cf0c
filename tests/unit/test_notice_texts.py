"""The words of the notices and of the code messages: right in each language, and fit for an SMS."""

from __future__ import annotations

import re

import pytest

from local.template import Template
from minid.domain.codes import CodePurpose, code_message
from minid.domain.contacts import Language
from minid.domain.letters.model import RecipientOutcome
from minid.domain.letters.workflow import TOLD_REFUSALS
from minid.domain.notices import WORDED, Message, NoticeKind, compose

# The GSM 03.38 default alphabet; the extension table's characters take two septets each.
GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENDED = set("^{}\\[~]|€\f")
TWO_SEGMENTS = 2 * 153  # septets: a message of more than one segment has 153 in each


def septets(text: str) -> int:
    assert set(text) <= GSM_BASIC | GSM_EXTENDED, set(text) - GSM_BASIC - GSM_EXTENDED
    return len(text) + sum(1 for c in text if c in GSM_EXTENDED)


def every_notice() -> list[tuple[NoticeKind, Language, str, str]]:
    return [
        (kind, language, channel, reserved)
        for kind in WORDED
        for language in Language
        for channel in ("mobile", "email")
        for reserved in ("false", "true")
    ]


def composed(kind: NoticeKind, language: Language, channel: str = "mobile", **params: str) -> Message:
    # the longest date; the longest lock a deploy may set is 1440 minutes (LockoutSeconds' MaxValue), told
    # "24 hours": 1439 minutes is the longest told
    return compose(kind, language, {"date": "2026-09-30", "channel": channel, **params})


@pytest.mark.parametrize(("kind", "language", "channel", "reserved"), every_notice())
def test_every_notice_fits_two_gsm_segments(kind: NoticeKind, language: Language, channel: str, reserved: str) -> None:
    """An SMS outside the GSM alphabet goes as UCS-2, 70 characters a segment: three to five times the
    cost, and more segments to arrive out of order."""
    assert int(Template.load().document["Parameters"]["LockoutSeconds"]["MaxValue"]) // 60 - 1 == 1439  # below
    changes = ({"change": "added"}, {"change": "replaced"}, {"change": "removed"})
    variants = ({"contacts": "mobile"}, {"contacts": "email"}, *changes)
    reasons = tuple({"reason": r.value} for r in sorted(TOLD_REFUSALS) if r is not RecipientOutcome.QUOTA)
    told = (*reasons, {"by": "support"}, *KNOWN_VARIANTS)
    for variant in ({}, *variants, *told):
        message = composed(kind, language, channel, failures="10", minutes="1439", reserved=reserved, **variant)
        assert septets(message.sms) <= TWO_SEGMENTS
        # a lock says when it was locked (NoticeDelivery._message: its event's time), with its day if told later
        dated = {"at": "2026-12-31T22:59Z", "today": "2027-01-05", "reserved": reserved}  # the longest day: "31.12."
        message = composed(kind, language, channel, failures="10", minutes="1439", **variant, **dated)
        assert septets(message.sms) <= TWO_SEGMENTS


@pytest.mark.parametrize("language", list(Language))
@pytest.mark.parametrize("purpose", list(CodePurpose))
def test_every_code_message_fits_one_gsm_segment(language: Language, purpose: CodePurpose) -> None:
    """With a public domain as long as the template allows (PublicDomain's MaxLength)."""
    longest = int(Template.load().document["Parameters"]["PublicDomain"]["MaxLength"])
    message = code_message("123456", language, "d" * (longest - 3) + ".no", purpose)
    assert septets(message.sms) <= 160
    assert f'lang="{language.value}"' in message.html


@pytest.mark.parametrize("language", list(Language))
def test_a_code_says_what_it_is_for_and_what_to_do_if_the_person_did_not_ask(language: Language) -> None:
    """An unasked login code means someone has the password; an unasked reset, enrolment or contact code
    is someone else's doing, or a typo, and is to be ignored. Each purpose its own words and subject."""
    messages = {purpose: code_message("123456", language, "minid.example.no", purpose) for purpose in CodePurpose}
    assert len({m.sms for m in messages.values()}) == len({m.subject for m in messages.values()}) == len(CodePurpose)
    change = {Language.ENGLISH: "Change your password.", Language.BOKMAL: "Bytt passordet", Language.NYNORSK: "Byt"}
    assert change[language] in messages[CodePurpose.LOGIN].sms
    assert all(change[language] not in m.sms for p, m in messages.items() if p is not CodePurpose.LOGIN)


@pytest.mark.parametrize("language", list(Language))
def test_an_app_added_is_told_apart_from_one_removed_and_the_person_told_to_remove_it(language: Language) -> None:
    """An app added by another is a second factor in their hands; one in place of the person's own, too,
    and theirs works no more."""
    added = composed(NoticeKind.SECOND_FACTOR_CHANGED, language, change="added")
    replaced = composed(NoticeKind.SECOND_FACTOR_CHANGED, language, change="replaced")
    removed = composed(NoticeKind.SECOND_FACTOR_CHANGED, language, change="removed")
    before = composed(NoticeKind.SECOND_FACTOR_CHANGED, language)  # queued before the change was told
    remove = {Language.ENGLISH: "remove the app", Language.BOKMAL: "fjern appen", Language.NYNORSK: "fjern appen"}
    assert remove[language] in added.sms
    assert remove[language] in replaced.sms
    assert remove[language] not in removed.sms
    no_more = {Language.ENGLISH: "no longer work", Language.BOKMAL: "virker ikke", Language.NYNORSK: "verkar ikkje"}
    assert no_more[language] in replaced.sms
    assert no_more[language] not in added.sms
    assert len({added.subject, replaced.subject, removed.subject, before.subject}) == 4


@pytest.mark.parametrize(
    ("language", "told"),
    [
        (Language.BOKMAL, ("ingen adresse vi kan sende brevet til", "Skatteetaten")),
        (Language.NYNORSK, ("inga adresse vi kan sende brevet til", "Skatteetaten")),
        (Language.ENGLISH, ("no address we can post it to", "Norwegian Tax Administration")),
    ],
)
def test_an_order_refused_for_want_of_an_address_says_so_and_not_the_quota(
    language: Language, told: tuple[str, str]
) -> None:
    no_address = composed(NoticeKind.PIN_LETTER_REFUSED, language, reason="no-address")
    quota = composed(NoticeKind.PIN_LETTER_REFUSED, language, reason="quota")
    assert all(words in no_address.sms for words in told)
    assert not any(words in quota.sms for words in told)
    assert "30" in quota.sms
    assert "30" not in no_address.sms
    assert composed(NoticeKind.PIN_LETTER_REFUSED, language).sms == quota.sms  # one queued before reasons were


@pytest.mark.parametrize(
    ("language", "told"),
    [
        (Language.BOKMAL, ("erstattet nummeret det ble bestilt med", "det nye fødselsnummeret ditt")),
        (Language.NYNORSK, ("erstatta nummeret det vart bestilt med", "det nye fødselsnummeret ditt")),
        (Language.ENGLISH, ("replaced the number it was ordered with", "your new national identity number")),
    ],
)
def test_an_order_with_a_number_replaced_says_to_order_with_the_new_one(
    language: Language, told: tuple[str, ...]
) -> None:
    replaced = composed(NoticeKind.PIN_LETTER_REFUSED, language, reason="number-replaced")
    assert all(words in replaced.sms for words in told)
    assert all(words in replaced.text for words in told)
    others = (composed(NoticeKind.PIN_LETTER_REFUSED, language, reason=r).sms for r in ("quota", "no-address"))
    assert not any(told[0] in text for text in others)


@pytest.mark.parametrize(
    ("language", "told"),
    [
        (Language.BOKMAL, ("adressen din i Folkeregisteret kan ikke skrives ut", "Sjekk dem hos Skatteetaten")),
        (Language.NYNORSK, ("adressa di i Folkeregisteret kan ikkje skrivast ut", "Sjekk dei hos Skatteetaten")),
        (Language.ENGLISH, ("Population Register cannot be printed", "with the Norwegian Tax Administration")),
    ],
)
def test_an_order_the_letter_cannot_print_says_to_call_support(language: Language, told: tuple[str, ...]) -> None:
    unprintable = composed(NoticeKind.PIN_LETTER_REFUSED, language, reason="unprintable")
    assert all(words in unprintable.sms for words in told)
    assert all(words in unprintable.text for words in told)
    assert "+47 800 30 300" in unprintable.sms  # (from abroad too, where most such addresses are)
    others = (composed(NoticeKind.PIN_LETTER_REFUSED, language, reason=r).sms for r in ("quota", "no-address"))
    assert not any(told[0] in text for text in others)


@pytest.mark.parametrize(
    ("language", "told"),
    [
        (Language.BOKMAL, ("kan ikke sende det til deg i posten", "Ring brukerstøtten for MinID")),
        (Language.NYNORSK, ("kan ikkje sende det til deg i posten", "Ring brukarstøtta for MinID")),
        (Language.ENGLISH, ("cannot send it to you by post", "Call MinID support")),
    ],
)
def test_an_order_to_a_strictly_confidential_address_says_to_call_support_and_names_no_protection(
    language: Language, told: tuple[str, ...]
) -> None:
    """Not to check the address with Skatteetaten and order again, as for one missing: no order will do. Nor
    that the address is protected: anyone may order in the person's name, to have this told to a phone or
    a mailbox the one they are protected from may read."""
    protected = composed(NoticeKind.PIN_LETTER_REFUSED, language, reason="protected-address")
    assert all(words in protected.sms for words in told)
    assert all(words in protected.text for words in told)
    assert "+47 800 30 300" in protected.sms
    said = (protected.subject + protected.sms + protected.text + protected.html).casefold()
    unsaid = ("skatteetaten", "tax administration", "again", "nytt", "fortrol", "fortrul", "confidential", "protect")
    assert not [words for words in unsaid if words in said]
    others = (composed(NoticeKind.PIN_LETTER_REFUSED, language, reason=r).sms for r in ("quota", "no-address"))
    assert not any(told[0] in text for text in others)


@pytest.mark.parametrize(
    ("language", "told"),
    [
        (Language.BOKMAL, ("sperret av brukerstøtten", "Ba du ikke om det")),
        (Language.NYNORSK, ("sperra av brukarstøtta", "Bad du ikkje om det")),
        (Language.ENGLISH, ("blocked by MinID user support", "If you did not ask for it, call")),
    ],
)
def test_a_block_by_support_says_so_and_not_that_someone_logged_in(language: Language, told: tuple[str, str]) -> None:
    by_support = composed(NoticeKind.PIN_LETTERS_BLOCKED_BY_OWNER, language, by="support")
    own = composed(NoticeKind.PIN_LETTERS_BLOCKED_BY_OWNER, language)
    assert all(words in by_support.sms for words in told)
    assert not any(words in own.sms for words in told)


def test_nynorsk_code_messages_are_in_nynorsk() -> None:
    nynorsk = code_message("123456", Language.NYNORSK, "minid.example.no", CodePurpose.LOGIN)
    bokmal = code_message("123456", Language.BOKMAL, "minid.example.no", CodePurpose.LOGIN)
    assert nynorsk.sms.startswith(
        "Koden din for å logge inn i MinID er 123456. Han gjeld i 10 minutt. Ikkje gi han til nokon. Ikkje deg?"
    )
    assert nynorsk.sms.endswith("\n\n@minid.example.no #123456")
    assert (nynorsk.text, nynorsk.html) != (bokmal.text, bokmal.html)
    assert "Ikkje gi han til nokon." in nynorsk.html


def words(message: Message) -> str:
    return re.sub(r"\s+", " ", message.text)


# ---------------------------------------------------------------------- English
def test_english_an_e_mail_address_is_being_added() -> None:
    email = composed(NoticeKind.CONTACT_ADDED, Language.ENGLISH, "email")
    assert email.subject == "MinID: An e-mail address is being added"
    assert "An e-mail address is being added to the contact register" in words(email)
    assert "A e-mail" not in email.text
    assert composed(NoticeKind.CONTACT_ADDED, Language.ENGLISH, "mobile").subject == (
        "MinID: A mobile number is being added"
    )


KNOWN_VARIANTS = ({"known": "password"}, {"known": "session"})


@pytest.mark.parametrize("language", list(Language))
def test_a_lock_by_one_who_knew_the_password_or_had_a_session_says_to_make_a_new_password_at_once(
    language: Language,
) -> None:
    """Past the password (a wrong code), someone knew it; at a change, someone had a session: the person is
    told so, and to make a new password with the letter (which ends every session). Wrong passwords alone
    tell nothing of the sort: anyone may type them."""
    plain = composed(NoticeKind.ACCOUNT_LOCKED, language)
    told = {known["known"]: composed(NoticeKind.ACCOUNT_LOCKED, language, **known) for known in KNOWN_VARIANTS}
    at_once = {Language.ENGLISH: "at once", Language.BOKMAL: "med en gang", Language.NYNORSK: "med ein gong"}
    assert at_once[language] not in plain.sms
    for message in told.values():
        assert at_once[language] in message.sms
        assert at_once[language] in words(message)
    assert told["password"].sms != told["session"].sms


@pytest.mark.parametrize(
    ("at", "english", "bokmal", "nynorsk"),
    [
        ("2026-12-07T13:05:00+00:00", "at 14:05", "kl. 14.05", "kl. 14.05"),  # winter: UTC+1
        ("2026-07-01T06:30:00+00:00", "at 08:30", "kl. 08.30", "kl. 08.30"),  # summer: UTC+2
    ],
)
def test_a_lock_says_when_it_was_locked_in_norway(at: str, english: str, bokmal: str, nynorsk: str) -> None:
    """Said in the past, with the time the person knows (Norway's, as each language writes it): a notice
    a provider's outage held up for hours must not read as a lock begun now."""
    told = {
        language: composed(NoticeKind.ACCOUNT_LOCKED, language, at=at)
        for language in (Language.ENGLISH, Language.BOKMAL, Language.NYNORSK)
    }
    assert f"3 times in a row: locked {english} for an hour." in told[Language.ENGLISH].sms
    assert told[Language.ENGLISH].subject == f"MinID: Your MinID was locked {english}"
    assert f"så {bokmal} ble den sperret i en time." in told[Language.BOKMAL].sms
    assert told[Language.BOKMAL].subject == f"MinID: MinID-en din ble sperret {bokmal}"
    assert f"så {nynorsk} vart MinID-en sperra i ein time." in told[Language.NYNORSK].sms
    assert told[Language.NYNORSK].subject == f"MinID: MinID-en din vart sperra {nynorsk}"
    for message in told.values():
        assert words(message).count(english if message is told[Language.ENGLISH] else bokmal) == 1


def test_english_a_lock_of_one_minute_is_singular() -> None:
    assert "locked for a minute" in composed(NoticeKind.ACCOUNT_LOCKED, Language.ENGLISH, minutes="1").sms


# ---------------------------------------------------------------------- bokmål
def test_bokmal_an_e_mail_address_being_changed_is_masculine() -> None:
    email = words(composed(NoticeKind.CONTACT_CHANGED, Language.BOKMAL, "email"))
    assert "E-postadressen i kontaktregisteret blir endret fra denne til en ny" in email
    assert "endre den tilbake" in email
    assert "dette" not in email
    assert "endre det" not in email
    mobile = words(composed(NoticeKind.CONTACT_CHANGED, Language.BOKMAL, "mobile"))
    assert "Mobilnummeret i kontaktregisteret blir endret fra dette til et nytt" in mobile
    assert "endre det tilbake" in mobile


@pytest.mark.parametrize(
    ("language", "channel", "expected"),
    [
        (Language.BOKMAL, "mobile", "Mobilnummeret i kontaktregisteret blir endret til et nytt, med MinID-en din."),
        (Language.BOKMAL, "email", "E-postadressen i kontaktregisteret blir endret til en ny, med MinID-en din."),
        (Language.NYNORSK, "mobile", "Mobilnummeret i kontaktregisteret blir endra til eit nytt, med MinID-en din."),
        (Language.NYNORSK, "email", "E-postadressa i kontaktregisteret blir endra til ei ny, med MinID-en din."),
        (Language.ENGLISH, "mobile", "The mobile number in the contact register is being changed to a new one"),
        (Language.ENGLISH, "email", "The e-mail address in the contact register is being changed to a new one"),
    ],
)
def test_a_change_told_to_the_other_contact_is_not_from_this_one(
    language: Language, channel: str, expected: str
) -> None:
    told = words(composed(NoticeKind.CONTACT_CHANGED, language, channel, told="other"))
    assert expected in told
    assert not any(this in told for this in ("fra dette", "fra denne", "frå dette", "frå denne", "from this one"))


def test_bokmal_an_e_mail_address_being_added_is_masculine() -> None:
    email = words(composed(NoticeKind.CONTACT_ADDED, Language.BOKMAL, "email"))
    assert "når den er bekreftet" in email
    assert "fjern den," in email
    mobile = words(composed(NoticeKind.CONTACT_ADDED, Language.BOKMAL, "mobile"))
    assert "når det er bekreftet" in mobile
    assert "fjern det," in mobile


def test_bokmal_the_public_sector_is_it() -> None:
    """ "det offentlige" is singular: it notifies (det skal), not they (de skal)."""
    enrolled = words(composed(NoticeKind.ENROLLED, Language.BOKMAL))
    assert "der det offentlige finner den når det skal varsle deg" in enrolled
    assert "når de skal" not in enrolled


def test_bokmal_a_lock_of_one_minute_is_singular() -> None:
    assert "sperret i ett minutt" in composed(NoticeKind.ACCOUNT_LOCKED, Language.BOKMAL, minutes="1").sms


# ---------------------------------------------------------------------- nynorsk
NYNORSK_WORDS = {
    NoticeKind.PIN_LETTER_POSTED: ("vart sendt i posten 30. september 2026", "Har du ikkje bestilt det?", "kodane"),
    NoticeKind.PIN_LETTER_REFUSED: ("ei bestilling", "sender ikkje eit nytt brev no", "dei siste 30 dagane"),
    NoticeKind.PIN_LETTER_BLOCKED: ("fem gonger", "kodane i brevet er sperra", "nokon ha prøvd"),
    NoticeKind.PIN_LETTERS_BLOCKED_BY_OWNER: ("vart sperra 30. september 2026", "verkar ikkje lenger"),
    NoticeKind.PIN_LETTER_FAILED: ("kunne ikkje skrivast ut eller sendast", "Vi ser på saka.", "ringje"),
    NoticeKind.ENROLLED: ("Du er no brukar av MinID", "denne kontaktinformasjonen", "det offentlege"),
    NoticeKind.RE_ENROLLED: ("med eit nytt PIN-kodebrev", "som erstattar denne", "med ein gong"),
    NoticeKind.ACCOUNT_LOCKED: ("feil opplysningar", "3 gonger på rad", "sperra i ein time"),
    NoticeKind.PASSWORD_CHANGED: ("Passordet ditt er endra.", "Var det ikkje deg, ring brukarstøtta"),
    NoticeKind.PASSWORD_RESET: ("Passordet ditt er laga på nytt med PIN-kodebrevet.",),
    NoticeKind.SECOND_FACTOR_CHANGED: ("Det er lagt til eller fjerna ein autentiseringsapp.",),
    NoticeKind.CONTACT_CHANGED: ("Mobilnummeret i kontaktregisteret blir endra frå dette til eit nytt",),
    NoticeKind.CONTACT_REMOVED: ("er fjerna frå kontaktregisteret", "Det offentlege varslar deg ikkje her lenger"),
    NoticeKind.CONTACT_ADDED: ("Det blir lagt til eit mobilnummer", "når nummeret er stadfest", "fjern nummeret"),
    NoticeKind.CONFIRMATION_REMINDER: ("Du har ikkje stadfest mobilnummeret og e-postadressa di", "innan to månader"),
    NoticeKind.RESERVATION_CHANGED: ("reservasjonen din mot digital kommunikasjon", "oppheven", "kan no varsle deg"),
    NoticeKind.PASSWORD_RESET_NO_LETTER: ("ikkje noko PIN-kodebrev med kodar som kan brukast", "ingen kode vart send"),
}


@pytest.mark.parametrize("kind", WORDED)
def test_nynorsk_texts(kind: NoticeKind) -> None:
    message = composed(kind, Language.NYNORSK)
    told = words(message)
    for expected in NYNORSK_WORDS[kind]:
        assert expected in told, expected
    assert "ikkje" in told
    assert message.text.startswith("Hei,\n\n")
    assert 'lang="nn"' in message.html


def test_nynorsk_an_e_mail_address_is_feminine() -> None:
    changed = composed(NoticeKind.CONTACT_CHANGED, Language.NYNORSK, "email")
    assert changed.subject == "MinID: E-postadressa di blir endra"
    assert "E-postadressa i kontaktregisteret blir endra frå denne til ei ny" in words(changed)
    assert "endre adressa tilbake" in words(changed)
    added = words(composed(NoticeKind.CONTACT_ADDED, Language.NYNORSK, "email"))
    assert "Det blir lagt til ei e-postadresse" in added
    assert "når adressa er stadfest" in added


@pytest.mark.parametrize(("minutes", "told"), [("1", "eitt minutt"), ("15", "15 minutt"), ("120", "2 timar")])
def test_nynorsk_lock_lengths(minutes: str, told: str) -> None:
    assert f"sperra i {told}" in composed(NoticeKind.ACCOUNT_LOCKED, Language.NYNORSK, minutes=minutes).sms


@pytest.mark.parametrize("language", list(Language))
def test_a_reservation_made_and_one_lifted_are_told_apart(language: Language) -> None:
    made = composed(NoticeKind.RESERVATION_CHANGED, language, reserved="true")
    lifted = composed(NoticeKind.RESERVATION_CHANGED, language, reserved="false")
    assert made.subject != lifted.subject
    assert septets(made.sms) <= TWO_SEGMENTS
    assert septets(lifted.sms) <= TWO_SEGMENTS
    post = {Language.BOKMAL: "brev i posten", Language.NYNORSK: "brev i posten", Language.ENGLISH: "by post"}
    assert post[language] in made.sms
    assert post[language] not in lifted.sms


@pytest.mark.parametrize("kind", [NoticeKind.ENROLLED, NoticeKind.CONFIRMATION_REMINDER])
@pytest.mark.parametrize("language", list(Language))
def test_the_reserved_are_not_told_public_services_use_their_contacts(kind: NoticeKind, language: Language) -> None:
    """Public services do not use the contacts of one reserved against digital communication: the welcome
    and the reminder say so, and that MinID uses them, where for others they say public services do."""
    reserved = words(composed(kind, language, reserved="true"))
    others = words(composed(kind, language))
    public = {Language.BOKMAL: "Det offentlige bruker dem", Language.NYNORSK: "Det offentlege brukar dei"}
    if kind is NoticeKind.ENROLLED:
        public = {Language.BOKMAL: "der det offentlige finner den", Language.NYNORSK: "som det offentlege brukar"}
    public[Language.ENGLISH] = (
        "Public services use them" if kind is NoticeKind.CONFIRMATION_REMINDER else "where public services find it"
    )
    told = {
        Language.BOKMAL: "Du er reservert",
        Language.NYNORSK: "Du er reservert",
        Language.ENGLISH: "You are reserved",
    }
    assert public[language] in others
    assert public[language] not in reserved
    assert told[language] in reserved
    assert "MinID" in reserved.split(told[language])[1]
