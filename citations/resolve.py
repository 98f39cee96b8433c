"""Resolving short forms, Id. and supra to their full citations across the pages of one document, and turning
working records into :class:`~citations.models.Citation`.

- A full citation's authority gets the best metadata seen for it anywhere in the document (parties, court, year),
  so every citation of one authority normalises the same way.
- ``410 U.S. at 120``: the latest earlier full citation with that volume and reporter whose first page is at or
  before the pin (an antecedent name, "Roe, 410 U.S. at 120", breaks ties); failing that, a later one.
- ``Roe, supra, at 120``: the latest earlier full case citation whose party names contain the antecedent.
- ``Id.`` / ``Ibid.``: the authority of the citation just before it (unresolved if that one is).
"""
from __future__ import annotations

import re
from dataclasses import replace

from .models import Citation, RawCitation
from .normalize import authority_of, full_form, unresolved_form

FULL_KINDS = ("case", "journal", "statute", "regulation", "session_law", "other")


def _int(s: str) -> int | None:
    m = re.match(r"\d+", s or "")
    return int(m.group(0)) if m else None


def _merge(best: dict[str, RawCitation], r: RawCitation) -> None:
    b = best.get(r.authority)
    if b is None:
        best[r.authority] = replace(r, pin_cite="", parenthetical="")
        return
    if (not (b.plaintiff and b.defendant)) and r.plaintiff and (r.defendant or not b.plaintiff):
        b.plaintiff, b.defendant = r.plaintiff, r.defendant
    if r.year and (not b.year or (r.court and not b.court and r.year == b.year)):
        b.year, b.court = r.year, r.court


def in_running_header(text: str, start: int) -> bool:
    """The citation sits in a page's running header/footer ("Cite as: 570 U. S. ____ (2013)   3")."""
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", start)
    line = text[line_start:line_end if line_end >= 0 else len(text)].strip()
    if not (re.search(r"\S {3,}\S", line) or line.lower().startswith("cite as")):
        return False
    before = [x for x in text[:line_start].split("\n") if x.strip()]
    after = [x for x in text[line_start:].split("\n")[1:] if x.strip()]
    return len(before) < 2 or len(after) < 2


# sources that are cited like authorities but are not found as citations: an Id. after them refers to them
_NON_AUTHORITY_SOURCE = re.compile(
    r"\bBrief (?:for|of|in)\b|\bTr\. of Oral Arg\.|\bApp\. (?:to Pet\. for Cert\. )?\d|\bPet\. for Cert\.|"
    r"\bRecord\b|\bECF No\.|\bDkt\. No\.|\bJ\.A\. ?\d|\bApp\'x at\b"
)


def _between(raws: list[RawCitation], a: int, b: int, texts: list[str]) -> str:
    """Text between the end of raws[a] and the start of raws[b] (across pages)."""
    if a < 0:
        return ""
    ra, rb = raws[a], raws[b]
    if ra.page_number == rb.page_number:
        return texts[rb.page_number - 1][ra.end:rb.start]
    parts = [texts[ra.page_number - 1][ra.end:]]
    parts += texts[ra.page_number:rb.page_number - 1]
    parts.append(texts[rb.page_number - 1][:rb.start])
    return "\n".join(parts)


def _plausible(pin: str, page: str) -> bool | None:
    """Whether a numeric pin can fall in an opinion starting at page (None when either is not a number)."""
    p, q = _int(pin.replace("at ", "")), _int(page)
    if p is None or q is None:
        return None
    return 0 <= p - q <= 150


def _name_matches(antecedent: str, r: RawCitation) -> bool:
    if not antecedent:
        return False
    a = antecedent.lower().strip(" ,.")
    words = re.findall(r"[\w'’]+", f"{r.plaintiff} {r.defendant}".lower())
    if not words:
        return False
    return a in words or a in f"{r.plaintiff} {r.defendant}".lower()


def resolve(raws: list[RawCitation], texts: list[str]) -> list[Citation]:
    """``raws`` in document order (page, start); ``texts`` the original page texts (page_number 1 = texts[0])."""
    raws = sorted(raws, key=lambda r: (r.page_number, r.start, r.end))
    best: dict[str, RawCitation] = {}
    for r in raws:
        if r.kind in FULL_KINDS:
            r.authority = authority_of(r)
            if r.authority:
                _merge(best, r)
    fulls = [(i, r) for i, r in enumerate(raws) if r.kind == "case" and r.authority]

    resolved_to: dict[int, str] = {}
    last_authority = ""
    last_index = -1
    recent: list[str] = []
    for i, r in enumerate(raws):
        target = ""
        if r.kind in FULL_KINDS:
            target = r.authority
        elif r.kind == "short_case":
            pin = _int(r.pin_cite)
            cands = [(j, f) for j, f in fulls if f.volume == r.volume and f.reporter == r.reporter]
            ok = [(j, f) for j, f in cands if pin is None or _int(f.page) is None or 0 <= pin - _int(f.page) < 1000]
            before = [(j, f) for j, f in ok if j < i]
            pool = before or ok
            if pool:
                named = [(j, f) for j, f in pool if _name_matches(r.antecedent, best[f.authority])]
                pool = named or pool
                if pin is not None:
                    # the opinion that starts closest before the pin: "539 U.S., at 328" is Grutter (306),
                    # not Gratz (244); ties go to the latest
                    top = max(_int(f.page) or 0 for j, f in pool)
                    pool = [(j, f) for j, f in pool if (_int(f.page) or 0) == top]
                target = pool[-1 if before else 0][1].authority
        elif r.kind == "supra":
            seen = set()
            for j, f in reversed([(j, f) for j, f in fulls if j < i]):
                if f.authority in seen:
                    continue
                seen.add(f.authority)
                if _name_matches(r.antecedent, best[f.authority]):
                    target = f.authority
                    break
        elif r.kind == "id":
            target = last_authority
            if target and _NON_AUTHORITY_SOURCE.search(_between(raws, last_index, i, texts)):
                target = ""  # "Brief for Respondents 25 ... Ibid.": Id. refers to the brief
            b = best.get(target)
            if b is not None and b.kind == "case" and r.pin_cite and _plausible(r.pin_cite, b.page) is False:
                # "id. at 287" right after a footnote's "303 F.3d 1, 7": the pin cannot be in that opinion;
                # take the latest recent authority it can be in, else leave it unresolved
                target = ""
                for a in recent[::-1][:6]:
                    ba = best.get(a)
                    if ba is not None and ba.kind == "case" and _plausible(r.pin_cite, ba.page):
                        target = a
                        break
        resolved_to[i] = target
        if r.kind in FULL_KINDS and in_running_header(texts[r.page_number - 1], r.start):
            continue  # a running header is no antecedent for Id.
        last_authority = target
        last_index = i
        if target and (not recent or recent[-1] != target):
            recent.append(target)

    out: list[Citation] = []
    for i, r in enumerate(raws):
        text = texts[r.page_number - 1]
        target = resolved_to[i]
        if r.kind in FULL_KINDS:
            src = best.get(target, r) if target else r
            pin = r.pin_cite
            normalized = full_form(src, pin) if target else ""
            if not normalized:
                normalized = " ".join(text[r.start:r.end].split())
            out.append(Citation(
                kind=r.kind, matched_text=text[r.start:r.end], start=r.start, end=r.end,
                page_number=r.page_number, normalized=normalized, authority=target,
                volume=r.volume, reporter=r.reporter, page=r.page, pin_cite=pin, court=src.court, year=src.year,
                plaintiff=src.plaintiff, defendant=src.defendant, parenthetical=r.parenthetical,
                title=r.title, section=r.section))
            continue
        if target and r.kind == "id" and r.pin_cite.startswith("§") and best[target].kind in ("statute", "regulation"):
            # "Id. § 1292(a)(1)" after "28 U.S.C. § 1291": same code, another section
            m = re.match(r"§§? ?([\w.\-–]+?)((?:\([a-zA-Z0-9]{1,5}\))*)\.?$", r.pin_cite)
            if m:
                src = replace(best[target], section=m.group(1).rstrip(".:"))
                target = authority_of(src)
                best.setdefault(target, src)
                r = replace(r, pin_cite=m.group(2))
        if target:
            src = best[target]
            pin = r.pin_cite
            if src.kind in ("statute", "regulation", "session_law", "other") and pin.startswith("at "):
                pin = ""
            out.append(Citation(
                kind=r.kind, matched_text=text[r.start:r.end], start=r.start, end=r.end,
                page_number=r.page_number, normalized=full_form(src, pin), authority=target,
                volume=src.volume, reporter=src.reporter, page=src.page, pin_cite=pin, court=src.court,
                year=src.year, plaintiff=src.plaintiff, defendant=src.defendant, parenthetical=r.parenthetical,
                title=src.title, section=src.section))
        else:
            out.append(Citation(
                kind=r.kind, matched_text=text[r.start:r.end], start=r.start, end=r.end,
                page_number=r.page_number, normalized=unresolved_form(r), authority="",
                volume=r.volume, reporter=r.reporter, pin_cite=r.pin_cite))
    return out
