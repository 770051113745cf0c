"""PIN letter rules: the quota, the codes, and the letter's text and print document."""

from __future__ import annotations

import io
import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import given
from hypothesis import strategies as st
from msgspec.structs import asdict, replace
from pypdf import PdfReader

from local.print_provider import read_printed_letter
from minid.adapters.print_documents import UnprintableLetter, manifest, render_pdf, unprintable
from minid.domain.contacts import Language
from minid.domain.keys import Keyer, KeyPurpose, Pepper, PersonKey
from minid.domain.letters.model import (
    CODES_PER_LETTER,
    LetterStanding,
    LetterStatus,
    PinLetter,
    QuotaPolicy,
    asking_order,
    codes_to_ask,
    generate_pin_codes,
)
from minid.domain.letters.ports import PrintedLetter, RecipientStanding
from minid.domain.letters.printing import letter_text, role_of

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)
POLICY = QuotaPolicy()


@pytest.mark.parametrize(
    ("ages", "allowed"),
    [
        ([], True),
        ([timedelta(hours=23, minutes=59)], False),
        ([timedelta(hours=24)], True),
        ([timedelta(days=2), timedelta(days=10)], True),
        ([timedelta(days=2), timedelta(days=10), timedelta(days=29)], False),
        ([timedelta(days=2), timedelta(days=10), timedelta(days=30)], True),
        ([timedelta(days=40)] * 5, True),
    ],
)
def test_the_quota(ages: list[timedelta], allowed: bool) -> None:
    assert POLICY.allows([NOW - age for age in ages], NOW) is allowed


def test_the_quota_forgets_what_is_older_than_its_window() -> None:
    orders = {"a": NOW - timedelta(days=31), "b": NOW - timedelta(days=3)}
    assert POLICY.recent(orders, NOW) == {"b": orders["b"]}


class RepeatingSource:
    """A random source that gives the same numbers over and over (to prove codes stay distinct)."""

    def __init__(self, values: list[int]) -> None:
        self.values = values
        self.calls = 0

    def randbelow(self, upper: int) -> int:
        self.calls += 1
        return self.values[self.calls % len(self.values)] % upper

    def token_hex(self, nbytes: int) -> str:
        return "00" * nbytes


@given(st.lists(st.integers(min_value=0, max_value=999_999), min_size=CODES_PER_LETTER, unique=True))
def test_a_letter_has_20_distinct_numbered_6_digit_codes(values: list[int]) -> None:
    source = RepeatingSource(values + values)  # every value twice: duplicates must be drawn again
    codes = generate_pin_codes(source)
    assert list(codes) == list(range(1, 21))
    assert len(set(codes.values())) == 20
    assert all(len(code) == 6 and code.isdigit() for code in codes.values())


def test_codes_keep_their_leading_zeros() -> None:
    codes = generate_pin_codes(RepeatingSource(list(range(40))))
    assert codes[1] == "000001"


LETTER = PrintedLetter(
    letter_id="5cd3cd3a-9cdd-4b96-8e7a-ae34b0bb6309",
    name="Agnieszka Kowalska",
    address=("ul. Długa 12/4", "80-831 GDAŃSK", "POLAND"),
    country_code="PL",
    codes={i: f"{(i * 471_913) % 1_000_000:06d}" for i in range(1, 21)},
    language=Language.BOKMAL,
    dated=date(2026, 11, 22),
)


def test_the_pdf_shows_the_address_in_the_window_and_every_code_by_number() -> None:
    page = read_printed_letter(render_pdf(LETTER))
    assert page.window == ("Digitaliseringsdirektoratet, Postboks 1382 Vika, 0114 Oslo", LETTER.name, *LETTER.address)
    assert page.codes == {str(i): code for i, code in LETTER.codes.items()}


def test_a_long_name_and_address_are_set_smaller_to_fit_the_window() -> None:
    """At 10.5 points this address is 7 lines and a line of it 88 mm wide: past the 85 mm window's edge,
    and the country below it (the post would not see it). Set smaller, all of it is read in the window."""
    address = ("c/o Ole-Christian Alexander Kristoffersen", "Unit 12B, Tower 3", "45 Rizal Ave", "Barangay 123")
    long = replace(LETTER, address=(*address, "1003 MANILA", "METRO MANILA", "PHILIPPINES"), country_code="PH")
    page = read_printed_letter(render_pdf(long))
    assert page.window[1:] == (long.name, *long.address)


def test_a_name_too_long_for_a_line_even_set_small_is_broken_between_its_words() -> None:
    name = "Maria Fernanda de los Ángeles García-Villanueva Rodríguez"  # 111 mm at 10.5 points, 85 at 8
    page = read_printed_letter(render_pdf(replace(LETTER, name=name)))
    assert " ".join(page.window[1:-3]) == name
    assert page.window[-3:] == LETTER.address


@pytest.mark.parametrize(
    "address",
    [
        (*(f"line {i}" for i in range(12)), "POLAND"),  # too many lines, at any size
        ("ul. " + "Długa" * 20, "80-831 GDAŃSK", "POLAND"),  # too wide, at any size
    ],
)
def test_a_name_and_address_that_do_not_fit_the_window_fail(address: tuple[str, ...]) -> None:
    with pytest.raises(UnprintableLetter, match="do not fit the envelope's window"):
        render_pdf(replace(LETTER, address=address))
    assert (
        unprintable(LETTER.name, address)
        == f"the name and {len(address)} address lines do not fit the envelope's window"
    )


@pytest.mark.parametrize(
    ("name", "address"),
    [
        (LETTER.name, ("1-2-3 Marunouchi", "東京都千代田区", "JAPAN")),
        ("王小明", ("Storgata 1", "0155 OSLO")),
        ("Kari Nordmann", ("רחוב הרצל 5", "תל אביב", "ISRAEL")),
    ],
)
def test_what_cannot_be_printed_is_told_before_a_letter_is(name: str, address: tuple[str, ...]) -> None:
    """As the recipient is checked (the order then refused), by what refuses the letter's document."""
    why = unprintable(name, address)
    assert why is not None
    assert why.endswith("characters of the name or address are not in the letter's font")
    with pytest.raises(UnprintableLetter, match=why):
        render_pdf(replace(LETTER, name=name, address=address))
    assert unprintable(LETTER.name, LETTER.address) is None


@pytest.mark.parametrize(
    ("name", "address"),
    [
        ("\u200b\u200b", ("Storgata 1", "0155 OSLO")),  # zero-width spaces alone: a blank name line
        ("Kari \u202eNordmann", ("Storgata 1", "0155 OSLO")),  # a direction override: the name backwards
        ("Kari Nordmann", ("Storgata 1\u2028H0203", "0155 OSLO")),  # a line separator within a line
        ("Kari Nordmann", ("Storgata\u00ad1", "0155 OSLO")),  # a soft hyphen
    ],
)
def test_characters_the_font_has_that_print_as_nothing_are_told_before_a_letter_is(
    name: str, address: tuple[str, ...]
) -> None:
    why = unprintable(name, address)
    assert why == "1 characters of the name or address would print as nothing"
    with pytest.raises(UnprintableLetter, match=why):
        render_pdf(replace(LETTER, name=name, address=address))


def test_a_letter_whose_address_the_font_cannot_print_fails_and_names_no_character(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tokyo = replace(LETTER, address=("1-2-3 Marunouchi", "東京都千代田区", "JAPAN"), country_code="JP")
    with caplog.at_level(logging.DEBUG), pytest.raises(UnprintableLetter) as unprintable:
        render_pdf(tokyo)
    assert str(unprintable.value) == "7 characters of the name or address are not in the letter's font"
    assert not any(character in caplog.text for character in "東京都千代田区")


@pytest.mark.parametrize(
    ("name", "address", "country_code"),
    [
        ("Ánne Máreha Ŋuolja", ("Čáhcesuolu 3", "9520 GUOVDAGEAIDNU"), "NO"),  # Sámi
        ("Γιώργος Παπαδόπουλος", ("Οδός Ερμού 12", "105 63 ΑΘΗΝΑ", "GREECE"), "GR"),
        ("Ірина Шевченко", ("вул. Хрещатик, 22", "01001 КИЇВ", "UKRAINE"), "UA"),
        ("Արամ Սարգսյան", ("Աբովյան փ. 5", "0001 ԵՐԵՎԱՆ", "ARMENIA"), "AM"),
        ("ნინო ბერიძე", ("რუსთაველის გამზ. 10", "0108 თბილისი", "GEORGIA"), "GE"),
        ("Nguyễn Thị Hương", ("Số 12 Phố Hàng Bạc", "Hoàn Kiếm, HÀ NỘI", "VIETNAM"), "VN"),
        ("Jürgen Groß", ("Straße des 17. Juni 1", "10623 BERLIN", "GERMANY"), "DE"),
    ],
)
def test_the_letter_s_font_prints_the_alphabets_it_is_cut_to(
    name: str, address: tuple[str, ...], country_code: str
) -> None:
    letter = replace(LETTER, name=name, address=address, country_code=country_code)
    assert read_printed_letter(render_pdf(letter)).window[1:] == (name, *address)


@pytest.mark.parametrize(
    "address",
    [
        ("רחוב הרצל 5", "תל אביב", "ISRAEL"),  # right to left: would print reversed
        ("شارع الملك فهد", "الرياض", "SAUDI ARABIA"),  # and joined: would print as separate letters
    ],
)
def test_a_letter_in_a_script_the_font_is_not_cut_to_fails(address: tuple[str, ...]) -> None:
    with pytest.raises(UnprintableLetter):
        render_pdf(replace(LETTER, address=address))


@pytest.mark.parametrize("language", list(Language))
def test_every_character_of_the_letter_s_own_text_is_in_its_font(language: Language) -> None:
    """fpdf prints a character its font lacks as an empty box, and only logs it."""
    from fontTools.ttLib import TTFont  # noqa: PLC0415

    from minid.adapters.print_documents import FONTS  # noqa: PLC0415

    text = letter_text(replace(LETTER, language=language))
    lines = [value for value in asdict(text).values() if isinstance(value, str)] + list(text.introduction)
    for style in ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"):
        glyphs = TTFont(FONTS / style).getBestCmap()
        assert {c for line in lines for c in line if ord(c) not in glyphs} == set(), style


def test_the_letter_s_fonts_are_dejavu_cut_to_the_scripts_it_prints() -> None:
    """What `make fonts` cuts from the whole fonts (local/fonts/): every code point in SCRIPTS, and no
    other, each as wide as in the whole font."""
    from fontTools.ttLib import TTFont  # noqa: PLC0415

    from local.fonts import LAYER, SOURCES, STYLES, kept  # noqa: PLC0415
    from minid.adapters.print_documents import FONTS  # noqa: PLC0415

    assert LAYER == FONTS
    for style in STYLES:
        whole, cut = TTFont(SOURCES / style), TTFont(LAYER / style)
        whole_glyphs, cut_glyphs = whole.getBestCmap(), cut.getBestCmap()
        assert set(cut_glyphs) == {c for c in whole_glyphs if kept(c)}, f"{style}: run `make fonts`"
        widths = {c: whole["hmtx"][whole_glyphs[c]][0] for c in cut_glyphs}
        assert {c: cut["hmtx"][cut_glyphs[c]][0] for c in cut_glyphs} == widths, f"{style}: run `make fonts`"


@pytest.mark.parametrize("language", list(Language))
def test_the_pdf_is_one_a4_page(language: Language) -> None:
    reader = PdfReader(io.BytesIO(render_pdf(replace(LETTER, language=language))))
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    assert (round(float(box.width) * 25.4 / 72), round(float(box.height) * 25.4 / 72)) == (210, 297)


def _longest_name(address: tuple[str, ...], word: str) -> str:
    """The longest name of such words the window takes with this address: set small, and broken."""
    words: list[str] = []
    while unprintable(" ".join([*words, word]), address) is None:
        words.append(word)
    return " ".join(words)


def _lowest_text_mm(pdf: bytes) -> float:
    """How far above the page's bottom edge the lowest line of text stands, in millimetres."""
    heights: list[float] = []

    def visit(text: str, cm: list[float], tm: list[float], *_: Any) -> None:
        if text.strip():
            heights.append(tm[5] * cm[3] + cm[5])

    PdfReader(io.BytesIO(pdf)).pages[0].extract_text(visitor_text=visit)
    return min(heights) * 25.4 / 72


@pytest.mark.parametrize("language", list(Language))
@pytest.mark.parametrize("word", ["Wwwwwwww", "WWWWWWWWWWWW", "i", "Kristoffersen-Wilhelmsen"])
def test_the_text_ends_well_above_the_page_s_edge_at_the_longest_name(language: Language, word: str) -> None:
    """The page breaks nowhere (one page, whatever is drawn below its edge): the greeting, which names the
    person, would grow with the name (the window takes one of some 600 narrow characters, set small), and
    the text below it must stay clear of the printer's margin and the provider's marks along the edge."""
    address = ("Storgata 1", "0155 OSLO")  # the fewest lines an address has: the longest name
    name = _longest_name(address, word)
    assert len(name) > 150
    assert _lowest_text_mm(render_pdf(replace(LETTER, name=name, address=address, language=language))) >= 15


@pytest.mark.parametrize(
    ("language", "greets", "then"), [(Language.BOKMAL, "Hei, ", "Her er"), (Language.ENGLISH, "Dear ", "Here are")]
)
def test_a_greeting_longer_than_two_lines_is_cut_with_an_ellipsis(language: Language, greets: str, then: str) -> None:
    def body(name: str) -> list[str]:
        """The lines from the greeting to the text after it."""
        pdf = render_pdf(replace(LETTER, name=name, address=("Storgata 1", "0155 OSLO"), language=language))
        lines = PdfReader(io.BytesIO(pdf)).pages[0].extract_text().splitlines()
        start = next(i for i, line in enumerate(lines) if line.startswith(greets))
        return lines[start : next(i for i, line in enumerate(lines) if line.startswith(then))]

    name = " ".join(["Kristoffersen-Wilhelmsen"] * 12)
    greeting = body(name)
    assert len(greeting) == 2
    assert greeting[-1].endswith("…")
    assert body(LETTER.name) == [f"{greets}{LETTER.name}{',' if language is Language.ENGLISH else '.'}"]


@pytest.mark.parametrize("language", list(Language))
def test_the_support_number_is_never_broken_over_two_lines(language: Language) -> None:
    """In the English letter, "+47 800 30" ended a line and "300." began the next: a wrong number dialled."""
    assert "+47\u00a0800\u00a030\u00a0300" in letter_text(replace(LETTER, language=Language.ENGLISH)).not_ordered
    assert "800\u00a030\u00a0300" in letter_text(replace(LETTER, language=language)).not_ordered  # wherever lines fall
    pdf = render_pdf(replace(LETTER, language=language))
    assert [line for line in PdfReader(io.BytesIO(pdf)).pages[0].extract_text().splitlines() if "800 30 300" in line]


@pytest.mark.parametrize(
    ("language", "words"),
    [
        (Language.BOKMAL, "glemmer du passordet"),
        (Language.NYNORSK, "gløymer du passordet"),
        (Language.ENGLISH, "password"),
    ],
)
def test_the_letter_says_it_is_needed_for_a_forgotten_password(language: Language, words: str) -> None:
    """As the seeds' letter does: the reset takes a PIN code, and a letter thrown away is a new one ordered."""
    assert words in letter_text(replace(LETTER, language=language)).keep_safe


def test_the_manifest_says_how_to_post_it_and_holds_no_code() -> None:
    pdf = render_pdf(LETTER)
    content = manifest(LETTER, pdf, "letters/x/y/letter.pdf", NOW)
    assert content["destination_country"] == "PL"
    assert content["postage"] == "international"
    assert content["document"] == "letter.pdf"
    assert not any(code in str(content) for code in LETTER.codes.values())
    assert LETTER.name not in str(content)


@pytest.mark.parametrize(
    ("language", "phrases"),
    [
        (Language.BOKMAL, ["PIN-kodene dine til MinID", "Har du ikke bestilt dette brevet?", "22. november 2026"]),
        (Language.ENGLISH, ["Your PIN codes for MinID", "Did you not order this letter?", "22 November 2026"]),
        (Language.NYNORSK, ["PIN-kodane dine til MinID", "Har du ikkje bestilt dette brevet?", "22. november 2026"]),
    ],
)
def test_the_letter_speaks_the_persons_language(language: Language, phrases: list[str]) -> None:
    text = letter_text(replace(LETTER, language=language))
    everything = " ".join(str(value) for value in asdict(text).values())
    assert all(phrase in everything for phrase in phrases)
    assert LETTER.name in text.greeting


@pytest.mark.parametrize(
    ("arn", "role"),
    [
        (
            "arn:aws:sts::123456789012:assumed-role/minid-PrintProviderRole-1A2B/print-provider",
            ("123456789012", "minid-PrintProviderRole-1A2B"),
        ),
        (
            "arn:aws-us-gov:sts::210987654321:assumed-role/minid-PrintProviderRole-1A2B/job-7",
            ("210987654321", "minid-PrintProviderRole-1A2B"),
        ),
        ("arn:aws:iam::123456789012:user/alice", None),
        # a user whose path reads as the role's session: a user, not the role
        ("arn:aws:iam::123456789012:user/x:assumed-role/minid-PrintProviderRole-1A2B/mallory", None),
        ("arn:aws:sts::123456789012:federated-user/x:assumed-role/minid-PrintProviderRole-1A2B/m", None),
        ("arn:aws:sts::123456789012:assumed-role/minid-PrintProviderRole-1A2B/s/more", None),
        (None, None),
        ("", None),
    ],
)
def test_the_role_behind_a_caller(arn: str | None, role: tuple[str, str] | None) -> None:
    assert role_of(arn) == role


def _standing_after(first_letter_used: set[int], latest_used: set[int]) -> tuple[Keyer, PersonKey, LetterStanding]:
    keyer = Keyer(Pepper(b"p" * 32))
    person = PersonKey(keyer.digest(KeyPurpose.PERSON, "15108695088"))
    now = datetime(2026, 12, 3, tzinfo=UTC)
    latest = PinLetter(
        letter_id="second",
        person=person,
        status=LetterStatus.DISPATCHED,
        ordered_at=now,
        code_hashes={i: f"hash{i}" for i in range(1, CODES_PER_LETTER + 1)},
        used=dict.fromkeys(latest_used, now),
    )
    return keyer, person, LetterStanding(latest, active=True, used=frozenset(first_letter_used | latest_used))


def test_a_start_asks_for_the_first_numbers_the_person_has_used_on_no_letter() -> None:
    keyer, person, _ = _standing_after(set(), set())
    order = asking_order(keyer, person)
    _, _, standing = _standing_after({order[0]}, {order[2]})
    assert codes_to_ask(keyer, person, standing, 2) == (order[1], order[3])


def test_once_every_number_is_used_a_start_asks_for_codes_unused_on_the_latest_letter() -> None:
    """A PIN-code user's first letter used up: a start asked for the first numbers in the order, whatever
    the new letter had used, and a PIN login that drew one of them made every later start a decoy."""
    keyer, person, _ = _standing_after(set(), set())
    order = asking_order(keyer, person)
    everything = set(order)
    _, _, fresh = _standing_after(everything, set())
    assert codes_to_ask(keyer, person, fresh, 2) == order[:2]  # as new as any, and as a decoy asks
    _, _, standing = _standing_after(everything, {order[0], order[3]})
    assert codes_to_ask(keyer, person, standing, 2) == (order[1], order[2])
    assert standing.letter_for(codes_to_ask(keyer, person, standing, 2)) is standing.letter


@pytest.mark.parametrize(("code", "transient"), [("InternalError", True), ("SlowDown", True), ("AccessDenied", False)])
def test_a_print_document_s_delete_that_s3_reports_failed_raises(code: str, transient: bool) -> None:
    """S3 answers DeleteObjects 200 and lists the keys it could not delete: a document left behind holds
    every code in clear, so that is an error (a transient one tried again by the workflow's retry)."""
    from botocore.stub import Stubber  # noqa: PLC0415

    from minid import wiring  # noqa: PLC0415
    from minid.adapters.aws_errors import is_transient  # noqa: PLC0415
    from minid.adapters.print_documents import S3PrintDocuments  # noqa: PLC0415
    from minid.adapters.random import SystemRandom  # noqa: PLC0415
    from minid.domain.letters.model import PrintDocument  # noqa: PLC0415

    s3: Any = wiring.new_session().create_client(
        "s3", region_name="eu-north-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    document = PrintDocument("bucket", "letters/l/r/letter.pdf", "letters/l/r/manifest.json")
    expected = {"Bucket": "bucket", "Delete": {"Objects": [{"Key": document.pdf}, {"Key": document.manifest}]}}
    with Stubber(s3) as stub:
        stub.add_response("delete_objects", {"Deleted": [{"Key": document.manifest}]}, expected)
        S3PrintDocuments(s3, "bucket", "key", SystemRandom()).discard(document)  # one already gone: deleted
        errors = [{"Key": document.pdf, "Code": code, "Message": "We encountered an internal error."}]
        stub.add_response("delete_objects", {"Errors": errors}, expected)
        with pytest.raises(ClientError) as raised:
            S3PrintDocuments(s3, "bucket", "key", SystemRandom()).discard(document)
    assert is_transient(raised.value) is transient


@pytest.mark.parametrize(
    ("apart", "repeated"),
    [
        (timedelta(seconds=0), True),
        (timedelta(seconds=30), True),  # checked after the accepted one
        (timedelta(seconds=-30), True),  # placed before it, checked after it (two sent at once)
        (timedelta(seconds=60), True),
        (timedelta(seconds=61), False),  # an order refused by the quota, told
        (timedelta(seconds=-61), False),
    ],
)
def test_an_order_within_a_minute_of_one_taken_is_the_same_order_sent_twice(apart: timedelta, repeated: bool) -> None:
    taken = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
    assert QuotaPolicy().repeats([taken - timedelta(days=20), taken], taken + apart) is repeated


def test_an_order_reserved_before_its_placing_was_kept_counts_as_placed_when_accepted() -> None:
    """A ledger written before `placed` was kept (and one whose order was released, its placing left)."""
    accepted, placed = datetime(2026, 12, 6, 9, 0, tzinfo=UTC), datetime(2026, 12, 6, 8, 58, tzinfo=UTC)
    standing = RecipientStanding(
        person=None,
        language=None,
        orders={"old": accepted, "new": accepted},
        ledger_version=1,
        placed={"new": placed, "gone": placed},
    )
    assert standing.placed_orders() == {"old": accepted, "new": placed}
