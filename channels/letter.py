"""Letters: the message is typeset as an A4 PDF and kept in the document store.

No provider is called: a letter is "sent" once its PDF is stored; printing and posting happen
outside Herald, from ``GET /v1/messages/{id}/document``. The typeface is PT Sans (ParaType, OFL),
shipped on PyPI by ``fontpkg-pt-sans``: static TrueType files covering Latin with Romanian
ș ț ă â î and Cyrillic, embedded (subset) in every PDF.
"""

from __future__ import annotations

import functools
import logging
import re
import unicodedata
from datetime import UTC, datetime

import fontpkg
from fpdf import FPDF
from fpdf.errors import FPDFException

from channel_table import LETTER
from channels import documents
from channels.base import (
    Channel,
    InvalidContent,
    InvalidDestination,
    PermanentError,
    Receipt,
    Rendered,
    TransientError,
)
from models.states import FailureReason

MIN_ADDRESS_LINES = 3
MAX_ADDRESS_LINES = 8
MAX_ADDRESS_LINE_LENGTH = 100
#: Longest letter body accepted, in characters (about forty pages).
MAX_BODY_CHARACTERS = 100_000

FAMILY = "PT Sans"
LEFT_MARGIN, RIGHT_MARGIN, TOP_MARGIN, BOTTOM_MARGIN = 25.0, 20.0, 20.0, 20.0
#: The recipient block sits where a DL window envelope (DIN 5008) shows it.
ADDRESS_TOP, ADDRESS_WIDTH, ADDRESS_FONT_SIZES = 50.0, 85.0, (10.0, 9.0, 8.0, 7.0)
DATE_TOP = 100.0
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

# fontTools logs each subset font at INFO (a line per glyph table); only its problems matter.
logging.getLogger("fontTools").setLevel(logging.WARNING)


class LetterChannel(Channel):
    row = LETTER

    def parse_destination(self, value) -> str:
        """A postal address: a list of 3 to 8 lines, or one string of newline-separated lines."""
        if isinstance(value, str):
            lines = [line.strip() for line in value.splitlines() if line.strip()]
        elif isinstance(value, list):
            lines = [_address_line(number, line) for number, line in enumerate(value, 1)]
        else:
            raise InvalidDestination("Must be a list of address lines or a string of lines.")
        if len(lines) < MIN_ADDRESS_LINES:
            raise InvalidDestination(f"A postal address needs at least {MIN_ADDRESS_LINES} lines.")
        if len(lines) > MAX_ADDRESS_LINES:
            raise InvalidDestination(f"A postal address has at most {MAX_ADDRESS_LINES} lines.")
        for number, line in enumerate(lines, 1):
            if len(line) > MAX_ADDRESS_LINE_LENGTH:
                raise InvalidDestination(
                    f"Line {number} is longer than {MAX_ADDRESS_LINE_LENGTH} characters."
                )
            if not line.isprintable():
                raise InvalidDestination(f"Line {number} must be printable text.")
        return "\n".join(lines)

    def check_content(self, content: dict) -> None:
        if len(content["body"]) > MAX_BODY_CHARACTERS:
            raise InvalidContent(
                "body", f"At most {MAX_BODY_CHARACTERS} characters for letter recipients."
            )

    def send(self, rendered: Rendered, destination: str) -> Receipt:
        try:
            pdf, pages = typeset(rendered, destination.split("\n"), datetime.now(UTC))
        except FPDFException as error:
            raise PermanentError(
                FailureReason.TEMPLATE_ERROR, f"the letter cannot be typeset: {error}"
            ) from None
        try:
            document_id = documents.put(pdf, "application/pdf", "letter.pdf")
        except OSError as error:
            raise TransientError(f"document store: {error.strerror or error!r}") from None
        return Receipt(provider_id=document_id, details={"documentId": document_id, "pages": pages})


def _address_line(number: int, line) -> str:
    if not isinstance(line, str) or not line.strip():
        raise InvalidDestination(f"Line {number} must be a non-empty string.")
    return line.strip()


class LetterPDF(FPDF):
    """An A4 page with the page number in the footer."""

    def footer(self) -> None:
        self.set_y(-BOTTOM_MARGIN + 5)
        self.set_font(FAMILY, size=8)
        self.cell(0, 5, f"{self.page_no()} / {{nb}}", align="C")


def typeset(rendered: Rendered, address: list[str], sent_at: datetime) -> tuple[bytes, int]:
    """The letter as PDF bytes, and its number of pages: the recipient's address, the date,
    the subject as a heading, then the body."""
    pdf = LetterPDF(format="A4", unit="mm")
    pdf.add_font(FAMILY, "", str(_font_file(400)))
    pdf.add_font(FAMILY, "B", str(_font_file(700)))
    pdf.set_margins(LEFT_MARGIN, TOP_MARGIN, RIGHT_MARGIN)
    pdf.set_auto_page_break(True, margin=BOTTOM_MARGIN + 5)
    pdf.set_creator("Herald")
    pdf.set_creation_date(sent_at)
    if rendered.subject:
        pdf.set_title(rendered.subject)
    pdf.add_page()
    _address_block(pdf, address)
    pdf.set_xy(LEFT_MARGIN, DATE_TOP)
    pdf.set_font(FAMILY, size=10)
    pdf.cell(0, 5, sent_at.date().isoformat(), align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)
    if rendered.subject:
        pdf.set_font(FAMILY, "B", size=13)
        _paragraph(pdf, 0, 6.5, _printable(rendered.subject))
        pdf.ln(4)
    pdf.set_font(FAMILY, size=11)
    _paragraph(pdf, 0, 5.5, _printable(rendered.body))
    pages = pdf.page_no()
    return bytes(pdf.output()), pages


def _address_block(pdf: FPDF, lines: list[str]) -> None:
    """The address lines at the window position, in the largest size that fits its width."""
    for size in ADDRESS_FONT_SIZES:
        pdf.set_font(FAMILY, size=size)
        if max(pdf.get_string_width(line) for line in lines) <= ADDRESS_WIDTH:
            break
    pdf.set_xy(LEFT_MARGIN, ADDRESS_TOP)
    for line in lines:
        _paragraph(pdf, ADDRESS_WIDTH, 5, line)


def _paragraph(pdf: FPDF, width: float, line_height: float, text: str) -> None:
    """``text`` left-aligned in lines ``width`` wide (0: to the right margin); the next line
    starts at the left margin."""
    pdf.multi_cell(width, line_height, text, align="L", new_x="LMARGIN", new_y="NEXT")


def _printable(text: str) -> str:
    """Text as the typesetter takes it: Unix line ends, tabs as spaces, no control characters."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    return _CONTROL.sub("", text.replace("\t", "    "))


@functools.cache
def _font_file(weight: int):
    """The PT Sans TrueType file of this weight inside the installed font package."""
    return fontpkg.path(FAMILY, weight=weight)
