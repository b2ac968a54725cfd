"""The disclosure letter (42 CFR 2.25): the list of a person's disclosures as a PDF the officer can
send them. Plain Python (fpdf2): report rows in, PDF bytes out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from fpdf import FPDF

# A Unicode font where the system has one (names are not all Latin-1); else a core font, with what
# it cannot show replaced.
FONT_FILES = (Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
              Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"))  # fmt: skip


class _Letter(FPDF):
    def __init__(self) -> None:
        super().__init__(orientation="P", unit="mm", format="Letter")
        self.unicode = all(path.is_file() for path in FONT_FILES)
        if self.unicode:
            self.add_font("Letter", "", str(FONT_FILES[0]))
            self.add_font("Letter", "B", str(FONT_FILES[1]))
        self.family_name = "Letter" if self.unicode else "Helvetica"
        self.set_margins(20, 18, 20)
        self.set_auto_page_break(True, margin=18)

    def text_of(self, value: Any) -> str:
        text = "" if value is None else str(value)
        return text if self.unicode else text.encode("latin-1", "replace").decode("latin-1")

    def paragraph(self, text: str, size: float = 10.5, style: str = "") -> None:
        self.set_font(self.family_name, style, size)
        self.multi_cell(0, 5.5, self.text_of(text), new_x="LMARGIN", new_y="NEXT")
        self.ln(2)


def disclosure_letter(
    person: str,
    patient: str,
    rows: Sequence[Mapping[str, Any]],
    names: Mapping[str, str],
    since: datetime,
    until: datetime,
    officer: str,
    gateway_name: str,
) -> bytes:
    """The letter: who the disclosures were of, the period, and one row per disclosure (when, to
    whom and their organization, what, from which program, why, on what basis)."""
    pdf = _Letter()
    pdf.add_page()
    pdf.paragraph("Disclosures of your substance-use treatment records", 15, "B")
    pdf.paragraph(f"For {person} ({patient}), from {since:%d %B %Y} to {until:%d %B %Y}.")
    pdf.paragraph(
        "Under 42 CFR 2.25 you may ask for a list of the disclosures of your records that were made with "
        "your consent in the last three years. This is that list, as recorded by "
        f"{gateway_name}, which releases records of your treatment programs to crisis responders only as "
        "your consent or the law allows."
    )
    if not rows:
        pdf.paragraph("No disclosures of your records were made in this period.", style="B")
    columns = (("When", 26), ("To", 34), ("What", 52), ("From", 30), ("Why, and on what basis", 34))
    if rows:
        pdf.set_font(pdf.family_name, "B", 9)
        with pdf.table(col_widths=tuple(w for _, w in columns), text_align="LEFT", line_height=4.6) as table:
            header = table.row()
            for title, _ in columns:
                header.cell(title)
            pdf.set_font(pdf.family_name, "", 8.5)
            for row in rows:
                organization = names.get(str(row.get("recipient_organization")), row.get("recipient_organization"))
                basis = str(row.get("basis") or "")
                if row.get("consents"):
                    basis += f" ({', '.join(map(str, row['consents']))})"
                cells = (
                    str(row.get("disclosed_at") or "")[:16].replace("T", " ") + " UTC",
                    f"{row.get('recipient') or row.get('recipient_user')}" + (f", {organization}" if organization else ""),
                    row.get("description") or row.get("item"),
                    names.get(str(row.get("discloser")), row.get("discloser")),
                    f"{row.get('purpose') or ''}; {basis}",
                )  # fmt: skip
                line = table.row()
                for cell in cells:
                    line.cell(pdf.text_of(cell))
    pdf.ln(4)
    pdf.paragraph(
        f"{len(rows)} disclosure{'s' if len(rows) != 1 else ''} in all. If you have questions about this list or "
        f"want to revoke a consent, contact {officer}, compliance officer."
    )
    return bytes(pdf.output())
