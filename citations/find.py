"""Finding citations in one page of text: pieces -> clean + OCR repair -> eyecite + statute regexes -> our own
metadata (pin, court, year, parties, parenthetical) -> spans mapped back to the original text.

Guards against eyecite 2.7.8 problems:
- a neighbour's year or party names (upstream issue 321): court/year are only taken from a parenthetical that
  directly follows the citation (after its pin cite and any parallel citations), parties only from the text
  between the previous citation and this one (see :func:`_parties`);
- a line break before the year loses it: the text is whitespace-normalised first, with an offset map;
- superlinear time on big inputs: the text is split into 4-16 KB pieces at paragraph or sentence ends.
"""
from __future__ import annotations

import re
from collections.abc import Iterator

import threading

import eyecite.find as _eyecite_find
import eyecite.helpers as _eyecite_helpers
from eyecite import get_citations
from eyecite.models import (
    FullCaseCitation,
    FullJournalCitation,
    FullLawCitation,
    IdCitation,
    ShortCaseCitation,
    SupraCitation,
)

from .clean import MappedText, clean
from .models import RawCitation
from .normalize import tidy
from .statutes import find_statutes

# eyecite work this engine does not use: its court lookup (one regex pass over every court for each parenthetical,
# about 40% of eyecite's time on citation-dense text; we parse court and year ourselves) and reference citations
# ("Grutter" alone).  Skipped only inside our own calls (thread-local flag); other callers of eyecite are unaffected.
_local = threading.local()
_orig_court_by_paren = _eyecite_helpers.get_court_by_paren
_orig_reference_citations = _eyecite_find.extract_reference_citations


def _court_by_paren(paren_string: str):
    if getattr(_local, "lean", False):
        return None
    return _orig_court_by_paren(paren_string)


def _reference_citations(citation, document):
    if getattr(_local, "lean", False):
        return []
    return _orig_reference_citations(citation, document)


_eyecite_helpers.get_court_by_paren = _court_by_paren
_eyecite_find.extract_reference_citations = _reference_citations


def _eyecite(text: str):
    _local.lean = True
    try:
        return get_citations(text)
    finally:
        _local.lean = False


PIECE_MIN = 4_000
PIECE_MAX = 16_000

_PARAGRAPH = re.compile(r"\n[ \t]*\n")
_SENTENCE = re.compile(r"(?<=[a-z)\]”\"’]{3}[.!?])[\"”’)]?\s+(?=[A-Z(“\"])")
_SPACE = re.compile(r"\s+")


def split_pieces(text: str, min_size: int = PIECE_MIN, max_size: int = PIECE_MAX) -> Iterator[tuple[int, str]]:
    """(offset, piece) of text split at paragraph ends, else sentence ends, else spaces; pieces <= max_size."""
    n = len(text)
    start = 0
    while n - start > max_size:
        lo, hi = start + min_size, start + max_size
        cut = -1
        for pattern in (_PARAGRAPH, _SENTENCE, _SPACE):
            last = None
            for m in pattern.finditer(text, lo, hi):
                last = m
            if last is not None:
                cut = last.end()
                break
        if cut <= start:
            cut = hi
        yield start, text[start:cut]
        start = cut
    if start < n or n == 0:
        yield start, text[start:]


# ---------------------------------------------------------------------------------------- metadata
_PIN = re.compile(
    r",? ?(?:at )?(?P<pin>(?:\d+|[*]\d+|¶ ?\d+)(?:[-–]\d+)?(?:,? ?nn?\. ?\d+(?:[-–]\d+)?)?"
    r"(?:(?:, ?| & | and )\d+(?:[-–]\d+)?(?:,? ?nn?\. ?\d+(?:[-–]\d+)?)?)*)(?![\w.]\w)"
)
_MONTH = r"(?:Jan|Feb|Mar|Apr|May|June?|July?|Aug|Sept?|Oct|Nov|Dec)[a-z]*\.?"
_COURT_YEAR = re.compile(
    rf" ?\((?P<court>[^()]{{0,60}}?) ?(?:{_MONTH} \d{{1,2}}, )?(?P<year>1[6-9]\d\d|20\d\d)\)"
)
_SIGNALS = {
    "this", "our", "we", "its", "see", "see,", "also", "cf.", "cf", "but", "accord", "accord,", "compare", "with", "e.g.", "e.g.,", "quoting",
    "citing", "contra", "generally", "infra", "supra", "id.", "ibid.", "also,", "per", "and",
}
_CONNECTORS = {"of", "the", "&", "ex", "rel.", "for", "de", "du", "la", "on", "at", "to", "in", "v.", "von", "van",
               "der", "y", "d/b/a", "a/k/a", "f/k/a", "et", "al.", "ex.", "rel"}
_SUFFIXES = {"inc.", "co.", "ltd.", "l.l.c.", "llc", "n.a.", "l.p.", "lp", "p.c.", "p.a.", "corp.", "s.a.", "ag",
             "et al.", "llp", "l.l.p.", "plc", "jr.", "sr.", "ltd", "inc"}
_PREFIXES = re.compile(r"(?:^|\s)(?P<p>(?:In re|Ex parte|In the Matter of|Matter of|Estate of|Application of)\s.+)$")
_V = re.compile(r" (?:v\.|vs\.|v) ")


def _strip_quotes(s: str) -> str:
    return s.strip(" ,;:“”\"‘’'*")


def _plaintiff(before: str) -> str:
    """Party name ending ``before`` (text up to " v."): capitalised words and connectors, back to a stop."""
    toks = before.split(" ")
    out: list[str] = []
    n = len(toks)
    for k in range(n - 1, -1, -1):
        tok = toks[k]
        if not tok:
            break
        low = tok.lower()
        bare = tok.strip("“”\"‘’'(")
        if not bare:
            break
        if tok.endswith((";", ":", ")")) or tok.startswith("(") or tok.endswith(('."', '.”')):
            break
        if tok.endswith(",") and (not out or out[-1].lower() not in _SUFFIXES):
            break
        if low in _SIGNALS:
            break
        if low == "in":
            # "Parents Involved in Community Schools": only between capitalised words
            prev = toks[k - 1] if k > 0 else ""
            prev2 = toks[k - 2] if k > 1 else ""
            if not (out and prev[:1].isupper() and prev.lower() not in _SIGNALS and not prev.endswith((",", "."))
                    and (not prev2 or prev2[:1].isupper())):
                break
        if bare.isalpha() and bare.isupper() and len(bare) >= 5:
            break  # a caption or running header in capitals
        if bare[0].isupper() or bare[0].isdigit() or low in _CONNECTORS:
            if bare[0].isdigit() and tok.endswith("."):
                break
            out.append(tok)
            if len(out) > 14:
                break
            continue
        break
    while out and (out[-1].lower() in _CONNECTORS | {"in", "and"} or out[-1].isdigit()):
        out.pop()  # leading connector ("of", "the") or a stray number (page header)
    return _strip_quotes(" ".join(reversed(out)))


_DOCKET_TAIL = re.compile(r", (?:No|Nos)\. [\w\-–:/.]+(?:, [\w\-–:/.]+)*$")
_SENTENCE_END = re.compile(r"(?:^|\s)[a-z]{2,}[.!?] [A-Z]")
_TRAILING_PAREN = re.compile(r" \([^()]{1,80}\)$")


def _parties(window: str) -> tuple[str, str, int]:
    """(plaintiff, defendant, offset of the name start in window) for a window ending just before ", <volume>".

    Only text after the previous citation is looked at, so a neighbour's name cannot be taken.
    """
    if not window.endswith(","):
        return "", "", -1
    body = window[:-1]
    body = _DOCKET_TAIL.sub("", body)  # "Roman Catholic Diocese v. Cuomo, No. 20A87, 2020 WL ..."
    matches = list(_V.finditer(body))
    if matches:
        m = matches[-1]
        defendant = body[m.end():]
        core = _TRAILING_PAREN.sub("", defendant)  # "Quiros Lopez v. Unanue Casal (In re Unanue Casal)"
        parts = core.split(", ")
        if any(p.lower() not in _SUFFIXES for p in parts[1:]):
            return "", "", -1
        if len(core) > 120 or any(ch in core for ch in ";:()") or "supra" in core or _SENTENCE_END.search(core):
            return "", "", -1
        plaintiff = _plaintiff(body[:m.start()])
        defendant = _strip_quotes(defendant)
        if not plaintiff or not defendant:
            return "", "", -1
        start = body.rfind(plaintiff, 0, m.start() + 1)
        return plaintiff, defendant, max(start, 0)
    pm = _PREFIXES.search(body)
    if pm and len(pm.group("p")) < 100 and not any(ch in pm.group("p") for ch in ";:()"):
        name = _strip_quotes(pm.group("p"))
        return name, "", pm.start("p")
    return "", "", -1


def _paren_end(text: str, i: int) -> int:
    """End of the balanced parenthetical starting at text[i] == "(", or -1."""
    depth = 0
    for j in range(i, min(len(text), i + 1500)):
        ch = text[j]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return j + 1
    return -1


def _pin_at(text: str, pos: int, limit: int) -> tuple[str, int]:
    m = _PIN.match(text, pos, limit)
    if not m:
        return "", pos
    pin = m.group("pin")
    end = m.end()
    # a trailing ", 93" that is really the volume of a parallel citation starting at `limit`
    return pin, end


# ------------------------------------------------------------------------------------------ finding
_ID_SECTION = re.compile(r" ?(§§? ?\d+[\w.\-–]*(?:\([a-zA-Z0-9]{1,5}\))*)")
_LAW_FEDERAL = {"U.S.C.", "C.F.R.", "U.S.C.A.", "Pub. L."}
_SESSION_REPORTERS = {"Stat."}
_REGULATION_REPORTERS = {"Fed. Reg.", "F.R."}


def _core_end(c, text: str) -> int:
    s, e = c.span()
    return e


def find_in_clean(t: str) -> list[RawCitation]:
    """Citations in cleaned text ``t`` (spans in t's coordinates)."""
    if not t.strip():
        return []  # eyecite raises on empty text
    statutes = find_statutes(t)
    # eyecite sees the text with our own statute matches blanked out (same length, so same offsets): it parses
    # "Pub. L. No. 111-148, 124 Stat. 119" as one law citation "Pub. L. No. 111-148, 124" otherwise
    masked = t
    if statutes:
        chars = list(t)
        for s in statutes:
            chars[s.start:s.end] = " " * (s.end - s.start)
        masked = "".join(chars)
    eyes = [c for c in _eyecite(masked) if isinstance(
        c, (FullCaseCitation, FullJournalCitation, FullLawCitation, IdCitation, ShortCaseCitation, SupraCitation))]
    eyes = [c for c in eyes if not (isinstance(c, FullLawCitation) and c.groups.get("reporter") in _LAW_FEDERAL)]
    eyes.sort(key=lambda c: c.span()[0])
    starts = [c.span()[0] for c in eyes] + [len(t)]
    out: list[RawCitation] = []
    prev_end = 0
    i = 0
    while i < len(eyes):
        c = eyes[i]
        cs, ce = c.span()
        nxt = starts[i + 1]
        if isinstance(c, (FullCaseCitation, FullJournalCitation)):
            # collect parallel citations: ", 93 S. Ct. 705, 35 L. Ed. 2d 147"
            chain = [i]
            pins = {}
            pin, pend = _pin_at(t, ce, nxt)
            pins[i] = (pin, pend)
            j = i
            while j + 1 < len(eyes) and isinstance(eyes[j + 1], FullCaseCitation) and \
                    re.fullmatch(r", ?", t[pins[j][1]:eyes[j + 1].span()[0]]):
                j += 1
                p2, e2 = _pin_at(t, eyes[j].span()[1], starts[j + 1])
                pins[j] = (p2, e2)
                chain.append(j)
            tail = pins[j][1]
            court = year = paren = ""
            m = _COURT_YEAR.match(t, tail)
            end_all = tail
            if m:
                court, year = tidy(m.group("court")), m.group("year")
                end_all = m.end()
            pe_start = end_all
            if t.startswith(" (", pe_start) or t.startswith("(", pe_start):
                k = t.index("(", pe_start)
                pe = _paren_end(t, k)
                if pe > 0:
                    paren = tidy(t[k + 1:pe - 1])
            window = t[max(prev_end, cs - 300):cs].rstrip(" ")
            plaintiff, defendant, name_off = _parties(window) if isinstance(c, FullCaseCitation) else ("", "", -1)
            name_start = max(prev_end, cs - 300) + name_off if name_off >= 0 else cs
            for n, k in enumerate(chain):
                e = eyes[k]
                es, ee = e.span()
                kind = "journal" if isinstance(e, FullJournalCitation) else "case"
                reporter = e.corrected_reporter() if hasattr(e, "corrected_reporter") else e.groups.get("reporter", "")
                if reporter in _SESSION_REPORTERS:
                    kind = "session_law"
                elif reporter in _REGULATION_REPORTERS:
                    kind = "regulation"
                page = e.groups.get("page", "") or ""
                if not page or not page.strip("_"):
                    page = "___"
                rc = RawCitation(
                    kind=kind, start=name_start if n == 0 else es, anchor=es,
                    end=max(pins[k][1], ee) if k != chain[-1] else max(end_all, ee),
                    volume=e.groups.get("volume", "") or "", reporter=reporter, page=page,
                    pin_cite=pins[k][0], court=court, year=year,
                    plaintiff=plaintiff, defendant=defendant, parenthetical=paren,
                )
                out.append(rc)
            prev_end = max(end_all, pins[j][1])
            i = j + 1
            continue
        if isinstance(c, FullLawCitation) and c.groups.get("volume") and c.groups.get("page"):
            # "124 Stat. 119", "85 Fed. Reg. 12345", "1999 Cal. Stat. 123": session laws / the Federal Register
            g = c.groups
            reporter = g.get("reporter", "") or ""
            kind = "regulation" if reporter in _REGULATION_REPORTERS else "session_law"
            pin, pend = _pin_at(t, ce, nxt)
            m = _COURT_YEAR.match(t, pend)
            year = m.group("year") if m else ""
            end = m.end() if m else pend
            out.append(RawCitation(kind=kind, start=cs, end=end, volume=g["volume"], reporter=reporter,
                                   page=g["page"], pin_cite=pin, year=year))
            prev_end = end
        elif isinstance(c, FullLawCitation):
            g = c.groups
            reporter = g.get("reporter", "") or ""
            title = g.get("title") or g.get("chapter") or ""
            section = g.get("section", "") or ""
            pin = c.metadata.pin_cite or ""
            end = ce
            if pin:
                k = t.find(pin, ce, ce + len(pin) + 3)
                if k >= 0:
                    end = k + len(pin)
            out.append(RawCitation(kind="statute", start=cs, end=end, reporter=reporter, title=title,
                                   section=section, pin_cite=pin))
            prev_end = end
        elif isinstance(c, ShortCaseCitation):
            end = max(ce, getattr(c.metadata, "pin_cite_span_end", None) or 0)
            pin = tidy(c.metadata.pin_cite or "")
            k = t.find(" at ", cs, ce + 4)
            if k >= 0:
                pm = _PIN.match(t, k + 1)
                if pm and len(pm.group("pin")) >= len(pin):
                    pin, end = pm.group("pin"), max(end, pm.end())
            out.append(RawCitation(kind="short_case", start=cs, end=end, volume=c.groups.get("volume", "") or "",
                                   reporter=c.corrected_reporter(), page="",
                                   pin_cite=pin,
                                   antecedent=_strip_quotes(c.metadata.antecedent_guess or "")))
            prev_end = end
        elif isinstance(c, IdCitation):
            pin = tidy(c.metadata.pin_cite or "")
            end = ce
            sm = _ID_SECTION.match(t, ce) if not pin else None
            if sm:  # "Id. § 1292(a)(1)": eyecite leaves the section out
                pin, end = tidy(sm.group(1)), sm.end()
            elif not pin:
                pm = re.compile(r",? at ").match(t, ce)
                pm = _PIN.match(t, pm.start()) if pm else None
                if pm:  # "id. at 281 n.11": eyecite misses the pin
                    pin, end = pm.group("pin"), pm.end()
            out.append(RawCitation(kind="id", start=cs, end=end, pin_cite=pin))
            prev_end = end
        elif isinstance(c, SupraCitation):
            ante = _strip_quotes(c.metadata.antecedent_guess or "")
            if not ante or not ante[0].isupper():
                i += 1  # "as discussed supra": a cross-reference, not a citation
                continue
            fs = c.full_span()
            pin, end = tidy(c.metadata.pin_cite or ""), max(ce, fs[1])
            if not pin:
                pm = re.compile(r",? at ").match(t, ce) or re.compile(r"supra,? at ").match(t, cs)
                pm = _PIN.match(t, pm.end() - 3) if pm else None
                if pm:
                    pin, end = pm.group("pin"), max(end, pm.end())
            out.append(RawCitation(kind="supra", start=cs, end=end, pin_cite=pin,
                                   antecedent=_strip_quotes(c.metadata.antecedent_guess or "")))
            prev_end = ce
        i += 1
    for s in statutes:
        reporter = s.code
        out.append(RawCitation(kind=s.kind, start=s.start, end=s.end, reporter=reporter, title=s.title,
                               section=s.section, pin_cite=s.pin_cite))
    for rc in out:
        if rc.anchor < 0:
            rc.anchor = rc.start
    out.sort(key=lambda r: (r.start, r.end))
    return out


def find_raw(text: str, page_number: int = 1, ocr_repair: bool = True) -> list[RawCitation]:
    """Citations of one page, spans in the original ``text``."""
    out: list[RawCitation] = []
    for offset, piece in split_pieces(text):
        mt: MappedText = clean(piece, ocr_repair=ocr_repair)
        for rc in find_in_clean(mt.text):
            rc.repaired = mt.is_repaired(rc.start, rc.end)
            a, b = mt.span(rc.start, rc.end)
            # trim whitespace the map may have pulled in at the edges
            while a < b and piece[a].isspace():
                a += 1
            while b > a and piece[b - 1].isspace():
                b -= 1
            rc.start, rc.end = a + offset, b + offset
            rc.anchor = mt.pos[rc.anchor] + offset
            rc.page_number = page_number
            out.append(rc)
    return out
