"""Text from data in files a spreadsheet opens: never a formula (OWASP, "CSV Injection").

A unit may be named ``=HYPERLINK("http://…","Bấm vào đây")`` by whoever registers it; a
spreadsheet that reads that cell as a formula runs it on Home Affairs' machine. A cell is
read as a formula when it begins with ``=``, ``+``, ``-`` or ``@`` (spreadsheets also
evaluate after a leading tab or carriage return).

- XLSX: such a text is written as a text cell, unchanged (so Home Affairs sees the name as
  registered), with the "quote prefix" the spreadsheet itself sets when someone types a
  leading apostrophe: the cell stays text even when edited and confirmed again.
- CSV: there are no cell types, so such a text is written with a leading apostrophe
  (``'=HYPERLINK(…)``), as OWASP recommends; reading our own CSV back removes it
  (:func:`from_csv_cell`), so an export imports again unchanged.
"""

from __future__ import annotations

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a cell as a formula."""
CSV_TEXT_PREFIX = "'"


def reads_as_formula(text: str) -> bool:
    return text.startswith(FORMULA_TRIGGERS)


def to_csv_cell(text: str) -> str:
    """The text as a CSV cell no spreadsheet evaluates."""
    return CSV_TEXT_PREFIX + text if reads_as_formula(text) else text


def from_csv_cell(text: str) -> str:
    """A cell of a CSV written by :func:`to_csv_cell`, as the text it stands for."""
    if text.startswith(CSV_TEXT_PREFIX) and reads_as_formula(text[1:]):
        return text[1:]
    return text
