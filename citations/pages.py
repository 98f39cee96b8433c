"""Document-level page handling: running headers/footers, and joining pages so that a citation may cross a page
break ("See Watchtower Bible & Tract <page break> Soc'y of N.Y., Inc. v. Colombani, 712 F.3d 6").

Running headers and footers ("Cite as: 570 U. S. ____ (2013)   3", "Opinion of the Court", "Case: 20-1507",
"Page: 9", "- 6 -") are lines near the top or bottom of a page that repeat on many pages (digits ignored).  They
are blanked with spaces (offsets unchanged): they are not citations of authorities, and left in place they would
be read as part of a case name or taken as the antecedent of an Id.
"""
from __future__ import annotations

import re
from collections import Counter

_DIGITS = re.compile(r"\d+")
_WS = re.compile(r"\s+")
TOP_LINES = 8
BOTTOM_LINES = 4
MIN_LINES = 8
MAX_HEADER = 120


def _line_spans(text: str) -> list[tuple[int, int]]:
    spans, pos = [], 0
    for line in text.split("\n"):
        if line.strip():
            spans.append((pos, pos + len(line)))
        pos += len(line) + 1
    return spans


def _key(line: str) -> str:
    return _WS.sub(" ", _DIGITS.sub("#", line)).strip()


def mask_running_headers(pages: list[str], min_share: float = 0.2) -> list[str]:
    """Pages with their running header/footer lines replaced by spaces (same length)."""
    if len(pages) < 3:
        return list(pages)
    edges: list[list[tuple[int, int]]] = []
    counts: Counter[str] = Counter()
    for text in pages:
        spans = _line_spans(text)
        if len(spans) < MIN_LINES:
            edges.append([])  # too short to have a running header (and its lines may be all the text)
            continue
        edge = spans[:TOP_LINES] + spans[-BOTTOM_LINES:] if len(spans) > TOP_LINES + BOTTOM_LINES else spans
        edge = [(a, b) for a, b in dict.fromkeys(edge) if b - a <= MAX_HEADER]
        edges.append(edge)
        counts.update({_key(text[a:b]) for a, b in edge})
    need = max(3, int(min_share * len(pages) + 0.999))
    repeated = {k for k, n in counts.items() if n >= need and k}
    out = []
    for text, edge in zip(pages, edges):
        chars = None
        for a, b in edge:
            if _key(text[a:b]) in repeated:
                if chars is None:
                    chars = list(text)
                chars[a:b] = " " * (b - a)
        out.append("".join(chars) if chars is not None else text)
    return out
