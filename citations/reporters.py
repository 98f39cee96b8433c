"""Reporter tables (from reporters-db, the tables eyecite uses) and tolerant reporter lookup for OCR repair."""
from __future__ import annotations

import re
from functools import lru_cache

from reporters_db import EDITIONS, JOURNALS, VARIATIONS_ONLY

_SQUASH = re.compile(r"[\s.,'’]+")


def squash(reporter: str) -> str:
    """Reporter spelling reduced to its letters and digits: "U. S." -> "US", "F. 3d" -> "F3d"."""
    return _SQUASH.sub("", reporter)


@lru_cache(maxsize=1)
def known_reporters() -> dict[str, str]:
    """Every spelling reporters-db knows (editions and variations) -> its canonical edition."""
    out: dict[str, str] = {}
    for edition in EDITIONS:
        out[edition] = edition
    for variation, editions in VARIATIONS_ONLY.items():
        if len(editions) == 1:
            out.setdefault(variation, editions[0])
    return out


@lru_cache(maxsize=1)
def squashed_reporters() -> dict[str, str]:
    """Squashed spelling -> canonical edition, only where the squashed form is unambiguous."""
    seen: dict[str, set[str]] = {}
    for spelling, edition in known_reporters().items():
        seen.setdefault(squash(spelling), set()).add(edition)
    return {key: next(iter(eds)) for key, eds in seen.items() if len(eds) == 1 and key}


@lru_cache(maxsize=1)
def case_editions() -> frozenset[str]:
    return frozenset(EDITIONS)


@lru_cache(maxsize=1)
def journal_names() -> frozenset[str]:
    return frozenset(JOURNALS)


def is_known_edition(reporter: str) -> bool:
    return reporter in EDITIONS or reporter in JOURNALS


# OCR look-alikes inside reporter abbreviations, tried in this order (each at most once per key).
_LOOKALIKES = [
    (re.compile(r"(?<=\d)[Aa](?=$|[A-Z])"), "d"),  # "2a" -> "2d"
    (re.compile(r"8(?=d(?:$|[A-Z]))"), "3"),  # "F8d" -> "F3d"
    (re.compile(r"Z(?=d(?:$|[A-Z]))"), "2"),  # "FZd" -> "F2d"
    (re.compile(r"(?<=\d)nd(?=$|[A-Z])"), "d"),  # "2nd" -> "2d"
    (re.compile(r"(?<=\d)rd(?=$|[A-Z])"), "d"),  # "3rd" -> "3d"
    (re.compile(r"(?<=U)(?:8S|S8|8|5|\$)(?=$|[A-Z])"), "S"),  # "U. 8S." -> "US"
    (re.compile(r"(?<=S)(?:C|G)t"), "Ct"),
    (re.compile(r"(?<=[A-Z])0(?=[A-Za-z]|$)"), "O"),
    (re.compile(r"(?<=[a-z])1(?=[a-z.]|$)"), "l"),
    (re.compile(r"(?<=\d)tb(?=$|[A-Z])"), "th"),
]


@lru_cache(maxsize=4096)
def lookup_reporter(raw: str) -> str:
    """Canonical edition for a reporter spelling, tolerant of OCR spacing and look-alikes; "" if none.

    Exact spellings (editions and variations) come first; then the squashed spelling; then the squashed spelling
    with one or more look-alike corrections.  Only an edition that exists in reporters-db is ever returned.
    """
    raw = raw.strip()
    exact = known_reporters().get(raw)
    if exact:
        return exact
    key = squash(raw)
    if len(key) < 2:
        return ""
    table = squashed_reporters()
    if key in table:
        found = table[key]
        # editions without periods are neutral/public-domain forms ("OK", "WI", "NMSC"): exact spelling only,
        # so that "10 O.K. 20" is not read as an Oklahoma citation
        return found if "." in found else ""
    fixed = key
    for pattern, repl in _LOOKALIKES:
        fixed = pattern.sub(repl, fixed)
    found = table.get(fixed, "")
    return found if "." in found else ""
