"""Bluebook forms and authority keys.

Case:      ``Roe v. Wade, 410 U.S. 113, 116 (1973)`` (court before the year when the parenthetical names one:
           ``United States v. Smith, 123 F.3d 456, 460 (9th Cir. 1997)``); authority ``410 U.S. 113``.
Journal:   ``123 Harv. L. Rev. 456, 460 (2010)``; authority ``123 Harv. L. Rev. 456``.
Statute:   ``42 U.S.C. § 1983(b)``; authority ``42 U.S.C. § 1983``.  Regulation: ``29 C.F.R. § 1630.2(g)``.
State code (from eyecite's law tables): ``Cal. Penal Code § 187``.
Session law: ``Pub. L. No. 111-148``; ``124 Stat. 119``.
Constitution: ``U.S. Const. amend. XIV, § 1``; authority ``U.S. Const. amend. XIV``.
"""
from __future__ import annotations

import re

from .models import RawCitation

_SPACES = re.compile(r"\s+")


def tidy(s: str) -> str:
    return _SPACES.sub(" ", s).strip(" ,;")


def case_name(c: RawCitation) -> str:
    if c.plaintiff and c.defendant:
        return f"{c.plaintiff} v. {c.defendant}"
    return c.plaintiff or c.defendant


def _pin(pin: str) -> str:
    pin = tidy(pin).replace("–", "-").replace("—", "-")
    pin = re.sub(r"^at\b\s*", "", pin)  # "at 5" -> "5"; a bare "at" (its star page lost) -> ""
    if pin.startswith("*"):
        pin = "at " + pin  # star pages: "2020 WL 6948354, at *3"
    return pin


def authority_of(c: RawCitation) -> str:
    """Stable key of a full citation's authority ("" for Id./supra/short forms: they get it by resolution)."""
    if c.kind in ("case", "journal") or (c.kind in ("session_law", "regulation") and c.volume):
        if c.reporter and c.page:
            return " ".join(x for x in (c.volume, c.reporter, c.page) if x)  # some old reporters have no volume
        return ""
    if c.kind == "session_law":
        return f"Pub. L. No. {c.title}-{c.section}"
    if c.kind in ("statute", "regulation"):
        title = f"{c.title} " if c.title else ""
        return f"{title}{c.reporter} § {c.section}"
    if c.kind == "other" and c.reporter == "U.S. Const.":
        return f"U.S. Const. {c.section}"
    return ""


def base_form(c: RawCitation) -> str:
    """Bluebook form of the authority without a pin cite."""
    return full_form(c, "")


def full_form(c: RawCitation, pin: str) -> str:
    """Bluebook form of a full citation's authority with the given pin cite."""
    pin = _pin(pin)
    if c.kind in ("case", "journal") or (c.kind in ("session_law", "regulation") and c.volume):
        core = " ".join(x for x in (c.volume, c.reporter, c.page or "___") if x)
        name = case_name(c) if c.kind == "case" else ""
        out = f"{name}, {core}" if name else core
        if pin:
            out += f", {pin}"
        paren = " ".join(x for x in (c.court, c.year) if x)
        if paren:
            out += f" ({paren})"
        return out
    if c.kind == "session_law":
        return f"Pub. L. No. {c.title}-{c.section}" + (f", {pin}" if pin else "")
    if c.kind in ("statute", "regulation"):
        title = f"{c.title} " if c.title else ""
        sep = "" if pin.startswith("(") else " "
        sym = "§§" if pin.startswith(("to ", "et seq.")) and not pin.startswith("et") else "§"
        return f"{title}{c.reporter} {sym} {c.section}" + (f"{sep}{pin}" if pin else "")
    if c.kind == "other" and c.reporter == "U.S. Const.":
        return f"U.S. Const. {c.section}" + (f", {pin}" if pin else "")
    return ""


def unresolved_form(c: RawCitation) -> str:
    """Normalised text of a short form, Id. or supra whose full citation is unknown."""
    pin = _pin(c.pin_cite)
    if c.kind == "short_case":
        name = f"{c.antecedent}, " if c.antecedent else ""
        return f"{name}{c.volume} {c.reporter} at {pin}" if pin else f"{name}{c.volume} {c.reporter}"
    if c.kind == "id":
        return f"Id. at {pin}" if pin and pin[0].isdigit() else (f"Id. {pin}" if pin else "Id.")
    if c.kind == "supra":
        name = f"{c.antecedent}, " if c.antecedent else ""
        return f"{name}supra, at {pin}" if pin else f"{name}supra"
    return ""
