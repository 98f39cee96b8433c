"""Scoring against hand-checked expected files, and the plain-eyecite baseline (used by the benchmark and tests).

A found citation matches an expected one when page, kind and authority are equal (multiset matching, so a
citation repeated on a page must be found as often as it occurs).  ``normalized`` is compared for the matched
pairs and reported separately.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass


@dataclass
class Score:
    expected: int
    found: int
    matched: int
    normalized_ok: int

    @property
    def precision(self) -> float:
        return self.matched / self.found if self.found else 1.0

    @property
    def recall(self) -> float:
        return self.matched / self.expected if self.expected else 1.0

    @property
    def normalized_rate(self) -> float:
        return self.normalized_ok / self.matched if self.matched else 1.0

    def __add__(self, other: Score) -> Score:
        return Score(self.expected + other.expected, self.found + other.found, self.matched + other.matched,
                     self.normalized_ok + other.normalized_ok)


def score(found: list[dict], expected: list[dict]) -> Score:
    """``found``/``expected``: dicts with page, kind, authority (and normalized)."""
    key = lambda d: (d["page"], d["kind"], d["authority"])  # noqa: E731
    exp = Counter(key(d) for d in expected)
    got = Counter(key(d) for d in found)
    matched = sum((exp & got).values())
    norm_exp = Counter((key(d), d.get("normalized", "")) for d in expected)
    norm_got = Counter((key(d), d.get("normalized", "")) for d in found)
    return Score(sum(exp.values()), sum(got.values()), matched, sum((norm_exp & norm_got).values()))


def ours(pages: list[str], ocr_repair: bool = True) -> list[dict]:
    from . import find_document_citations

    return [{"page": c.page_number, "kind": c.kind, "authority": c.authority, "normalized": c.normalized}
            for c in find_document_citations(pages, ocr_repair=ocr_repair)]


def plain_eyecite(pages: list[str], clean: bool = False) -> list[dict]:
    """eyecite 2.7.8 as documented: get_citations per page (optionally after clean_text all_whitespace), then
    resolve_citations over the document; authorities keyed the same way as ours."""
    from eyecite import get_citations, resolve_citations
    from eyecite.clean import clean_text
    from eyecite.models import (FullCaseCitation, FullJournalCitation, FullLawCitation, IdCitation,
                                ShortCaseCitation, SupraCitation)

    allc = []
    page_of = {}
    for n, text in enumerate(pages, start=1):
        if clean:
            text = clean_text(text, ["all_whitespace"])
        for c in get_citations(text):
            page_of[id(c)] = n
            allc.append(c)

    def key(c) -> tuple[str, str]:
        g = c.groups
        if isinstance(c, FullLawCitation):
            rep = g.get("reporter", "")
            if g.get("volume") and g.get("page"):
                kind = "regulation" if rep == "Fed. Reg." else "session_law"
                return kind, f"{g['volume']} {rep} {g['page']}"
            kind = "regulation" if rep == "C.F.R." else "statute"
            title = g.get("title") or g.get("chapter") or ""
            return kind, f"{title + ' ' if title else ''}{rep} § {g.get('section', '')}"
        if isinstance(c, (FullCaseCitation, FullJournalCitation)):
            kind = "journal" if isinstance(c, FullJournalCitation) else "case"
            rep = c.corrected_reporter()
            if rep == "Stat.":
                kind = "session_law"
            page = g.get("page") or "___"
            return kind, f"{g.get('volume')} {rep} {page if page.strip('_') else '___'}"
        return "", ""

    resolved: dict[int, str] = {}
    try:
        res = resolve_citations(allc)
        for resource, cites in res.items():
            full = getattr(resource, "citation", None)
            if full is None:
                continue
            _, auth = key(full)
            for c in cites:
                resolved[id(c)] = auth
    except Exception:  # noqa: BLE001 - the baseline must not crash the benchmark
        pass
    out = []
    for c in allc:
        if isinstance(c, (FullCaseCitation, FullJournalCitation, FullLawCitation)):
            kind, auth = key(c)
        elif isinstance(c, ShortCaseCitation):
            kind, auth = "short_case", resolved.get(id(c), "")
        elif isinstance(c, IdCitation):
            kind, auth = "id", resolved.get(id(c), "")
        elif isinstance(c, SupraCitation):
            kind, auth = "supra", resolved.get(id(c), "")
        else:
            continue
        out.append({"page": page_of[id(c)], "kind": kind, "authority": auth, "normalized": ""})
    return out


def reporters_db_examples() -> list[tuple[str, set[str]]]:
    """(example, editions of its reporter) for every example in reporters-db's REPORTERS table."""
    from reporters_db import REPORTERS

    out = []
    for entries in REPORTERS.values():
        for entry in entries:
            editions = set(entry.get("editions", {}))
            for ex in entry.get("examples", []) or []:
                out.append((ex, editions))
    return out


def check_example(example: str, editions: set[str]) -> tuple[bool, bool, str]:
    """(found, normalised correctly, what we produced) for one reporters-db example citation.

    Only the digits of volume and page are compared ("1916C", "P7530", "¶ 67,488").

    Found: a case citation whose reporter is one of the reporter's editions, with the example's volume (its first
    token) and page (its last token).  Normalised correctly: ``normalized == "<volume> <edition> <page>"``.
    """
    import re

    from . import find_citations

    toks = example.split()
    vol, page = toks[0], toks[-1]
    digits = lambda s: re.sub(r"\D", "", s)  # noqa: E731 - "P7530" / "¶ 67,488" pages, "1916C" volumes
    cands = [c for c in find_citations(example) if c.kind in ("case", "journal", "session_law", "regulation")]
    for c in cands:
        if c.reporter in editions and digits(c.volume) == digits(vol) and digits(c.page) == digits(page):
            return True, c.normalized == " ".join(x for x in (c.volume, c.reporter, c.page) if x), c.normalized
    got = "; ".join(c.normalized for c in cands)
    if not re.match(r"^\d", vol):
        got = got or "(no volume in the example)"
    return False, False, got
