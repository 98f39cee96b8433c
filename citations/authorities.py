"""Table of authorities: every authority cited (in any form), grouped and alphabetised, with its pages."""
from __future__ import annotations

import re

from .models import Citation

CASE_KINDS = {"case"}
STATUTE_KINDS = {"statute", "regulation", "session_law"}
SECTIONS = ("Cases", "Statutes", "Other Authorities")


def _section(kind_of_authority: str) -> str:
    if kind_of_authority in CASE_KINDS:
        return "Cases"
    if kind_of_authority in STATUTE_KINDS:
        return "Statutes"
    return "Other Authorities"


def _sort_key(display: str) -> tuple:
    s = display.lower()
    s = re.sub(r"^(?:in re|ex parte|in the matter of)\s+", "", s)
    # numbers in natural order: "42 U.S.C. § 1983" before "42 U.S.C. § 12101"
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.findall(r"\d+|[a-z]+", s)), s


def _display(c: Citation) -> str:
    """Bluebook form without a pin cite."""
    if c.kind in ("statute", "regulation") and c.section:
        return c.authority
    n = c.normalized
    if c.pin_cite:
        pin = c.pin_cite[3:] if c.pin_cite.startswith("at ") else c.pin_cite
        for sep in (f", {pin}", f" {pin}", pin):
            k = n.find(sep)
            if k >= 0 and sep:
                n = n[:k] + n[k + len(sep):]
                break
    return n


def table_of_authorities(citations: list[Citation], passim_threshold: int = 5) -> dict:
    """{"Cases": [...], "Statutes": [...], "Other Authorities": [...]}; each entry
    ``{"authority", "display", "pages"}`` where pages is the sorted list of pages citing it in any form
    (full, short, Id., supra) or "passim" when it is cited on more than ``passim_threshold`` pages."""
    by_auth: dict[str, dict] = {}
    for c in citations:
        if not c.authority:
            continue
        e = by_auth.setdefault(c.authority, {"kind": "", "display": "", "pages": set()})
        e["pages"].add(c.page_number)
        if c.kind in ("case", "journal", "statute", "regulation", "session_law", "other"):
            disp = _display(c)
            # prefer the longest full form (the one with parties and year)
            if not e["kind"] or len(disp) > len(e["display"]):
                e["display"] = disp
            e["kind"] = e["kind"] or c.kind
    toa: dict[str, list] = {s: [] for s in SECTIONS}
    for auth, e in by_auth.items():
        if not e["kind"]:
            continue
        pages = sorted(e["pages"])
        toa[_section(e["kind"])].append({
            "authority": auth,
            "display": e["display"] or auth,
            "pages": "passim" if len(pages) > passim_threshold else pages,
        })
    for s in SECTIONS:
        toa[s].sort(key=lambda x: _sort_key(x["display"]))
    return toa


def render_table_of_authorities_markdown(toa: dict, title: str) -> str:
    lines = [f"# {title}", "", "## Table of Authorities", ""]
    for section in SECTIONS:
        entries = toa.get(section) or []
        if not entries:
            continue
        lines += [f"### {section}", "", "| Authority | Pages |", "| --- | --- |"]
        for e in entries:
            pages = e["pages"] if isinstance(e["pages"], str) else ", ".join(str(p) for p in e["pages"])
            display = e["display"].replace("|", "\\|")
            if section == "Cases":
                # italicise the case name (the part before the first ", <volume>")
                m = re.match(r"(.+?), (\d+ .*)$", display)
                if m and " v. " in m.group(1) or (m and m.group(1).startswith(("In re", "Ex parte"))):
                    display = f"*{m.group(1)}*, {m.group(2)}"
            lines.append(f"| {display} | {pages} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
