"""Plain data types of the citation engine."""
from __future__ import annotations

from dataclasses import dataclass

#: Every value ``Citation.kind`` can take.
KINDS = ("case", "short_case", "id", "supra", "statute", "regulation", "session_law", "journal", "other")


@dataclass(frozen=True)
class Citation:
    """One citation found in a page of text.

    ``start``/``end`` index the original page text given to the finder (before any cleaning or OCR repair), so
    ``page_text[start:end] == matched_text`` always holds.  ``normalized`` is the Bluebook form; for Id., supra and
    short forms it is the resolved full form with this citation's own pin cite.  ``authority`` is a stable key of
    the authority cited ("410 U.S. 113", "42 U.S.C. § 1983"), "" when the citation could not be resolved.
    ``court`` is the court as written in the citation's parenthetical ("1st Cir.", "W.D. Tex."), "" when the
    parenthetical gives only a year (as Supreme Court citations do).
    """

    kind: str
    matched_text: str
    start: int
    end: int
    page_number: int
    normalized: str
    authority: str
    volume: str = ""
    reporter: str = ""
    page: str = ""
    pin_cite: str = ""
    court: str = ""
    year: str = ""
    plaintiff: str = ""
    defendant: str = ""
    parenthetical: str = ""
    title: str = ""
    section: str = ""


@dataclass
class RawCitation:
    """A citation as found, before resolution (mutable working record; offsets in the original page text).

    ``antecedent`` is the name before a short form or supra ("Grutter" in "Grutter, 539 U.S., at 330").
    """

    kind: str
    start: int
    end: int
    page_number: int = 1
    volume: str = ""
    reporter: str = ""
    page: str = ""
    pin_cite: str = ""
    court: str = ""
    year: str = ""
    plaintiff: str = ""
    defendant: str = ""
    parenthetical: str = ""
    title: str = ""
    section: str = ""
    antecedent: str = ""
    authority: str = ""
    normalized: str = ""
    repaired: bool = False  # the match overlaps an OCR repair
    anchor: int = -1  # start of the volume/reporter core (decides the page of a citation crossing a page break)
