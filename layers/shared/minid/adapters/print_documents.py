"""The print document: a print-ready A4 PDF and a JSON manifest, KMS-encrypted in S3.

The address stands in the window of a C5/C4 window envelope (DIN 5008 form B: 20 mm from the
left, 45 mm from the top, 85 x 45 mm, with the sender's return line at its top), so the letter goes
into the envelope folded, with nothing else to print on it. The PDF embeds a subset of DejaVu Sans
(fonts/: cut to the alphabets fpdf prints correctly, Latin, Greek, Cyrillic, Armenian and Georgian, by
`local/fonts.py`; the whole font took most of a letter's time to parse). A name or address in another
script cannot be printed: the order is refused as its recipient is checked (`printable`), and a letter
whose register entry changed since fails (`UnprintableLetter`). S3 keys hold only the letter id and a document id;
nothing personal.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from minid.deadline import exempt
from minid.domain.letters.model import PrintDocument
from minid.domain.letters.ports import PrintedLetter
from minid.domain.letters.printing import SENDER, LetterText, letter_text
from minid.domain.random import RandomSource

if TYPE_CHECKING:
    from fpdf import FPDF
    from mypy_boto3_s3 import S3Client

FONTS = Path(__file__).with_name("fonts")
# The address window of a DIN 5008 form B letter (millimetres from the page's top left corner).
WINDOW_LEFT, WINDOW_TOP, WINDOW_WIDTH, WINDOW_HEIGHT = 20.0, 45.0, 85.0, 45.0
RETURN_LINE_HEIGHT = 5.0
# The return line and the recipient, 5 mm in from the window's sides (the sheet may shift in the envelope)
# and below the return line: a long name or address is set smaller, down to 8 points, and then a line too
# long is broken between its words; one that does not fit even so is unprintable, never printed past the
# window's edge (a country below it, say).
ADDRESS_LEFT, ADDRESS_WIDTH = WINDOW_LEFT + 5, WINDOW_WIDTH - 10
ADDRESS_TOP = WINDOW_TOP + RETURN_LINE_HEIGHT + 2
ADDRESS_HEIGHT = WINDOW_TOP + WINDOW_HEIGHT - ADDRESS_TOP
ADDRESS_SIZES = (10.5, 10.0, 9.5, 9.0, 8.5, 8.0)  # points, a line 5 mm high at 10.5
_FONT = "DejaVu"


class UnprintableLetter(Exception):
    """The name or address has characters the letter's font has no glyph for, or does not fit the
    envelope's window. Printed, they would be empty boxes or hidden, and the letter might never reach the
    person: the order is refused as its recipient is checked (`printable`); a letter whose register entry
    changed since fails here (an operator is alarmed). Its message, which the workflow's history
    keeps, names no character."""


def render_pdf(letter: PrintedLetter) -> bytes:
    """The letter as a one-page A4 PDF."""
    text = letter_text(letter)
    pdf = _new_pdf()
    pdf.set_title(text.title)
    pdf.set_creator("MinID")
    why, fitted = _set_in_the_window(pdf, letter.name, letter.address)
    if fitted is None:
        raise UnprintableLetter(why)
    pdf.add_page()
    _window(pdf, *fitted)
    _sender(pdf, text)
    _body(pdf, letter, text)
    return bytes(pdf.output())


def unprintable(name: str, address: Sequence[str]) -> str | None:
    """Why a letter to this name and address cannot be printed (render_pdf would refuse it), naming no
    character of them; None when it can."""
    with _measuring_one:
        why, fitted = _set_in_the_window(_measuring(), name, address)
    return why if fitted is None else None


@cache
def _measuring() -> FPDF:
    """A document to measure in, with the regular font alone, never printed: one a process (fpdf parses a
    font each time it is added, some 8 ms an order), used by one check at a time (_measuring_one: each
    sets its font's size)."""
    return _new_pdf(bold=False)


_measuring_one = threading.Lock()


def _new_pdf(*, bold: bool = True) -> FPDF:
    from fpdf import FPDF  # noqa: PLC0415  (imported when a letter is printed, not at cold start)

    # Both tell of the letters of a name and an address: fontTools at INFO which glyphs the subset kept,
    # fpdf at WARNING which ones a font lacks (not for a name or address: checked in _set_in_the_window).
    logging.getLogger("fontTools").setLevel(logging.WARNING)
    logging.getLogger("fpdf").setLevel(logging.ERROR)

    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.set_auto_page_break(auto=False)
    pdf.set_margins(WINDOW_LEFT, 15, 20)
    pdf.add_font(_FONT, "", str(FONTS / "DejaVuSans.ttf"))
    if bold:
        pdf.add_font(_FONT, "B", str(FONTS / "DejaVuSans-Bold.ttf"))
    return pdf


def _set_in_the_window(pdf: FPDF, name: str, address: Sequence[str]) -> tuple[str, tuple[float, list[str]] | None]:
    """The name and address as set in the window (its size and lines); or None, and why not."""
    from fpdf.fonts import TTFFont  # noqa: PLC0415

    font = pdf.fonts[_FONT.lower()]
    glyphs = font.cmap if isinstance(font, TTFFont) else {}  # a TTF, added in _new_pdf
    missing = {character for line in (name, *address) for character in line if ord(character) not in glyphs}
    if missing:
        return f"{len(missing)} characters of the name or address are not in the letter's font", None
    # a control or format character (a zero-width space, a direction override, a line separator) that the
    # font has: printed as nothing, or as the line turned about; a name of nothing else would be no name
    unseen = {character for line in (name, *address) for character in line if not character.isprintable()}
    if unseen:
        return f"{len(unseen)} characters of the name or address would print as nothing", None
    fitted = _fitted(pdf, (name, *address))
    if fitted is None:
        return f"the name and {len(address)} address lines do not fit the envelope's window", None
    return "", fitted


def _fitted(pdf: FPDF, lines: tuple[str, ...]) -> tuple[float, list[str]] | None:
    """The largest size the lines fit the window at, and the lines as set: as they are, at any size; else
    a line too wide broken between its words. None when they do not fit at all."""
    for broken in (False, True):
        for size in ADDRESS_SIZES:
            pdf.set_font(_FONT, size=size)
            set_lines = [part for line in lines for part in _broken(pdf, line)] if broken else list(lines)
            fits_wide = all(pdf.get_string_width(line) <= ADDRESS_WIDTH for line in set_lines)
            if fits_wide and len(set_lines) * _line_height(size) <= ADDRESS_HEIGHT:
                return size, set_lines
    return None


def _broken(pdf: FPDF, line: str) -> list[str]:
    """The line in parts as wide as the window takes at the font set, broken between words (a word too
    wide by itself stays whole, and does not fit)."""
    parts: list[str] = []
    for word in line.split():
        if parts and pdf.get_string_width(f"{parts[-1]} {word}") <= ADDRESS_WIDTH:
            parts[-1] = f"{parts[-1]} {word}"
        else:
            parts.append(word)
    return parts or [line]


def _line_height(size: float) -> float:
    return size * 5 / 10.5


def _window(pdf: FPDF, size: float, lines: list[str]) -> None:
    """The return line, then the recipient, inside the envelope window."""
    pdf.set_font(_FONT, size=6.5)
    pdf.set_xy(ADDRESS_LEFT, WINDOW_TOP)
    pdf.cell(ADDRESS_WIDTH, RETURN_LINE_HEIGHT, ", ".join(SENDER))
    pdf.set_font(_FONT, size=size)
    for number, line in enumerate(lines):
        pdf.set_xy(ADDRESS_LEFT, ADDRESS_TOP + number * _line_height(size))
        pdf.cell(ADDRESS_WIDTH, _line_height(size), line)


def _sender(pdf: FPDF, text: LetterText) -> None:
    """The sender, the date and the reference, to the right of the window."""
    pdf.set_font(_FONT, "B", 10)
    pdf.set_xy(125, 20)
    pdf.cell(65, 5, "MinID")
    pdf.set_font(_FONT, size=8.5)
    for number, line in enumerate((*SENDER, "", text.dated, text.reference)):
        pdf.set_xy(125, 26 + number * 4.5)
        pdf.cell(65, 4.5, line)


def _body(pdf: FPDF, letter: PrintedLetter, text: LetterText) -> None:
    """The text and the numbered codes, below the window."""
    pdf.set_xy(WINDOW_LEFT, 100)
    pdf.set_font(_FONT, "B", 15)
    pdf.cell(0, 8, text.title, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font(_FONT, size=10)
    pdf.multi_cell(170, 5, _greeting(pdf, text.greeting), new_x="LMARGIN", new_y="NEXT")
    for paragraph in text.introduction:
        pdf.ln(2)
        pdf.multi_cell(170, 5, paragraph, new_x="LMARGIN", new_y="NEXT")

    pdf.ln(4)
    pdf.set_font(_FONT, "B", 11)
    pdf.cell(0, 6, text.codes_heading, new_x="LMARGIN", new_y="NEXT")
    top = pdf.get_y() + 1
    for index, code in sorted(letter.codes.items()):
        column, row = divmod(index - 1, 10)
        pdf.set_xy(WINDOW_LEFT + 5 + column * 80, top + row * 7)
        pdf.set_font(_FONT, size=10)
        pdf.cell(10, 7, f"{index}.", align="R")
        pdf.set_font(_FONT, "B", 13)
        pdf.cell(35, 7, code)
    pdf.set_xy(WINDOW_LEFT, top + 10 * 7 + 4)

    pdf.set_font(_FONT, size=10)
    pdf.multi_cell(170, 5, text.keep_safe, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font(_FONT, "B", 10)
    pdf.cell(0, 5, text.not_ordered_heading, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(_FONT, size=10)
    pdf.multi_cell(170, 5, text.not_ordered, new_x="LMARGIN", new_y="NEXT")


GREETING_LINES = 2


def _greeting(pdf: FPDF, greeting: str) -> str:
    """The greeting in GREETING_LINES lines at most, at the font set: one longer (a name the window takes,
    set small, may run to some 600 characters) is cut, with an ellipsis, so that the text below it keeps
    its place on the page (which breaks nowhere: what ran past its edge would be lost)."""

    def fits(text: str) -> bool:
        return len(cast(list[str], pdf.multi_cell(170, 5, text, dry_run=True, output="LINES"))) <= GREETING_LINES

    if fits(greeting):
        return greeting
    kept, over = 0, len(greeting)  # the longest start that fits with its ellipsis: between these
    while over - kept > 1:
        middle = (kept + over) // 2
        kept, over = (middle, over) if fits(f"{greeting[:middle].rstrip()}…") else (kept, middle)
    return f"{greeting[:kept].rstrip(' -,')}…"  # (not "Kristoffersen-…")


def manifest(letter: PrintedLetter, pdf: bytes, pdf_key: str, created_at: datetime) -> dict[str, Any]:
    """What the print provider needs besides the PDF: how to print, fold and post it. No codes."""
    return {
        "letter_id": letter.letter_id,
        "document": pdf_key.rsplit("/", 1)[-1],
        "sha256": hashlib.sha256(pdf).hexdigest(),
        "pages": 1,
        "paper": "A4",
        "colour": "black-and-white",
        "simplex": True,
        "envelope": "C5 window, DIN 5008 form B",
        "destination_country": letter.country_code,
        "postage": "domestic" if letter.country_code == "NO" else "international",
        "created_at": created_at.isoformat(timespec="seconds"),
    }


class S3PrintDocuments:
    def __init__(self, client: S3Client, bucket: str, kms_key_id: str, random: RandomSource) -> None:
        self._client = client
        self._bucket = bucket
        self._kms_key_id = kms_key_id
        self._random = random

    def store(self, letter: PrintedLetter) -> PrintDocument:
        prefix = f"letters/{letter.letter_id}/{self._random.token_hex(8)}"
        pdf = render_pdf(letter)
        document = PrintDocument(self._bucket, f"{prefix}/letter.pdf", f"{prefix}/manifest.json")
        created = datetime.now(UTC)
        try:
            self._put(document.pdf, pdf, "application/pdf")
            self._put(
                document.manifest,
                json.dumps(manifest(letter, pdf, document.pdf, created), indent=2).encode(),
                "application/json",
            )
        except BaseException:
            # half stored (the manifest not, or out of time between): the task's retry stores another under
            # a new prefix, and this one, its codes in clear, is never sent. It goes now, whatever the time;
            # should that fail as well, the bucket's expiry takes it.
            with contextlib.suppress(Exception), exempt():
                self.discard(document)
            raise
        return document

    def printable(self, name: str, address: Sequence[str]) -> bool:
        return unprintable(name, address) is None

    def discard(self, document: PrintDocument) -> None:
        """Both objects deleted (a key already gone counts as deleted), or an error raised: S3 answers 200
        with the keys it could not delete listed, and a document left behind holds every code in clear."""
        answer = self._client.delete_objects(
            Bucket=document.bucket, Delete={"Objects": [{"Key": document.pdf}, {"Key": document.manifest}]}
        )
        failed = answer.get("Errors", [])
        if failed:
            code = failed[0].get("Code", "InternalError")
            status = 403 if code == "AccessDenied" else 500  # 500: transient, and the task is tried again
            answered: Any = {"Error": {"Code": code, "Message": "not deleted"}}
            raise ClientError(answered | {"ResponseMetadata": {"HTTPStatusCode": status}}, "DeleteObjects")

    def _put(self, key: str, body: bytes, content_type: str) -> None:
        try:
            self._client.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=body,
                ContentType=content_type,
                ServerSideEncryption="aws:kms",
                SSEKMSKeyId=self._kms_key_id,
                IfNoneMatch="*",
            )
        except ClientError as error:
            # The key is new to this call (a random part): already there, it was written by this call's
            # own attempt whose answer was lost, and the SDK's retry met it. The same bytes: done.
            if error.response.get("Error", {}).get("Code") != "PreconditionFailed":
                raise
