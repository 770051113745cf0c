"""The letter's fonts: DejaVu Sans and its bold (local/fonts/, as Debian's fonts-dejavu-core has them)
cut to the scripts a letter can print, for the layer (minid/adapters/fonts/).

fpdf parses a font's tables at every letter it renders: DejaVu Sans whole (6,253 glyphs, 0.7 MB a
style) took 55 to 75 ms of the 90 a letter's PDF took. A letter only needs the scripts it can print
correctly, and fpdf prints without shaping and from left to right (no text shaping is set up): the
Latin, Greek, Cyrillic, Armenian and Georgian alphabets, with their diacritics and punctuation.
Hebrew and Arabic (right to left, Arabic joined) would come out reversed and unjoined, so they are
left out, with DejaVu's symbols, box drawing, Braille and the scripts that need shaping: a name or
address in them fails the letter for an operator to see to (`UnprintableLetter`), as one in a script
DejaVu lacks always has.

`python -m local.fonts` writes the two cut fonts to layers/shared/minid/adapters/fonts/ (`make fonts`);
they are committed. A test holds them to the code points and widths of the sources in SCRIPTS.
"""

from __future__ import annotations

import io
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont

SOURCES = Path(__file__).with_name("fonts")
LAYER = Path(__file__).parents[1] / "layers" / "shared" / "minid" / "adapters" / "fonts"
STYLES = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf")

# The Unicode blocks kept (first, last code point): alphabets written left to right without shaping.
SCRIPTS: tuple[tuple[int, int], ...] = (
    (0x0020, 0x007E),  # Basic Latin (printable)
    (0x00A0, 0x00FF),  # Latin-1 Supplement: æ ø å, « », ...
    (0x0100, 0x024F),  # Latin Extended-A and -B: Sámi, Polish, Baltic, Czech, Turkish, Romanian, ...
    (0x0250, 0x02FF),  # IPA Extensions (ɛ ɔ ŋ ɓ ɗ of African alphabets) and Spacing Modifier Letters (okina)
    (0x0300, 0x036F),  # Combining Diacritical Marks
    (0x0370, 0x03FF),  # Greek and Coptic
    (0x0400, 0x052F),  # Cyrillic and Cyrillic Supplement
    (0x0530, 0x058F),  # Armenian
    (0x10A0, 0x10FF),  # Georgian
    (0x1E00, 0x1EFF),  # Latin Extended Additional: Vietnamese, ẞ, ...
    (0x1F00, 0x1FFF),  # Greek Extended
    (0x2000, 0x206F),  # General Punctuation: dashes, quotation marks, ...
    (0x2070, 0x209F),  # Superscripts and Subscripts
    (0x20A0, 0x20CF),  # Currency Symbols
    (0x2100, 0x218F),  # Letterlike Symbols (№) and Number Forms
    (0x2C60, 0x2C7F),  # Latin Extended-C
    (0xA640, 0xA69F),  # Cyrillic Extended-B
    (0xA720, 0xA7FF),  # Latin Extended-D
    (0xFB00, 0xFB06),  # Latin ligatures (ﬁ ﬂ)
)


def kept(code_point: int) -> bool:
    return any(first <= code_point <= last for first, last in SCRIPTS)


def cut(source: Path) -> bytes:
    """The font at `source` with the glyphs of SCRIPTS only (and .notdef, drawn as a box)."""
    options = subset.Options()
    options.notdef_outline = True  # the box fpdf would draw for a missing glyph (none reaches a letter)
    options.name_IDs = ["*"]  # the font's names and its licence, as they are
    options.name_languages = ["*"]
    font = TTFont(source, recalcTimestamp=False)
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=[code_point for code_point in font.getBestCmap() if kept(code_point)])
    subsetter.subset(font)
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()


def main() -> None:
    for style in STYLES:
        (LAYER / style).write_bytes(cut(SOURCES / style))


if __name__ == "__main__":
    main()
