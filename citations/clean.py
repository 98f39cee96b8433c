"""Text cleaning with an offset map back to the original text.

Every transformation here is a list of replacements on a :class:`MappedText`; the map ``pos`` has one entry per
boundary of the cleaned text (``len(text) + 1`` entries) giving the matching boundary in the original text, so a
span ``[a, b)`` of the cleaned text is ``[pos[a], pos[b])`` of the original.

Steps (see :func:`clean`):
1. de-hyphenate words broken across lines ("fac-\\ntors" -> "factors"), drop soft hyphens;
2. collapse every run of whitespace (line breaks included) to one space, which is what eyecite's
   ``clean_text(["all_whitespace"])`` does, but keeping the map;
3. OCR repairs (:mod:`citations.ocr`), each checked against the reporter tables.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field


@dataclass
class MappedText:
    text: str
    pos: list[int]
    repaired: list[tuple[int, int]] = field(default_factory=list)  # spans (cleaned coords) changed by OCR repair

    @classmethod
    def of(cls, text: str) -> MappedText:
        return cls(text, list(range(len(text) + 1)))

    def span(self, a: int, b: int) -> tuple[int, int]:
        """Original span of the cleaned span [a, b)."""
        return self.pos[a], self.pos[b]

    def replace(self, edits: Iterable[tuple[int, int, str]], repair: bool = False) -> MappedText:
        """Apply non-overlapping (start, end, replacement) edits given in cleaned coordinates, in order."""
        old, pos = self.text, self.pos
        out: list[str] = []
        new_pos: list[int] = []
        repaired_new: list[tuple[int, int]] = []
        # shift of older repaired spans
        shifts: list[tuple[int, int]] = []  # (old index, delta after it)
        last = 0
        delta = 0
        for s, e, r in edits:
            if s < last:
                continue  # overlapping edit: skip
            out.append(old[last:s])
            new_pos.extend(pos[last:s])
            n0 = len(new_pos)
            k = len(r)
            out.append(r)
            width = e - s
            for j in range(k):
                new_pos.append(pos[s + j] if j < width else pos[e])
            if repair and (old[s:e] != r):
                repaired_new.append((n0, n0 + k))
            delta += k - width
            shifts.append((e, delta))
            last = e
        if not shifts:
            return self
        out.append(old[last:])
        new_pos.extend(pos[last:])
        text = "".join(out)
        # move old repaired spans into the new coordinates
        moved: list[tuple[int, int]] = []
        for a, b in self.repaired:
            d = 0
            for e, dd in shifts:
                if e <= a:
                    d = dd
                else:
                    break
            moved.append((a + d, b + d))
        return MappedText(text, new_pos, sorted(moved + repaired_new))

    def sub(self, pattern: re.Pattern[str], repl: Callable[[re.Match[str]], str | None], repair: bool = False
            ) -> MappedText:
        """Regex substitution; ``repl`` returns the replacement or None to leave the match alone."""
        edits = []
        for m in pattern.finditer(self.text):
            r = repl(m)
            if r is not None and r != m.group(0):
                edits.append((m.start(), m.end(), r))
        return self.replace(edits, repair=repair) if edits else self

    def is_repaired(self, a: int, b: int) -> bool:
        return any(s < b and a < e for s, e in self.repaired)


_SOFT_HYPHEN = re.compile("\u00ad[ \t]*(?:\r?\n\s*)?")
# a word broken at a line end: lowercase letters on both sides of "-\n"
_HYPHENATED = re.compile(r"(?<=[a-z])-[ \t]*\r?\n\s*(?=[a-z])")
# a number range or reporter broken at a line end: "1204-\n05" -> "1204-05"
_HYPHEN_DIGITS = re.compile(r"(?<=\d)([-–])[ \t]*\r?\n\s*(?=\d)")
_WHITESPACE = re.compile(r"[\s\u00a0\u2000-\u200b\u202f\u205f\u3000]+")


def normalize_whitespace(mt: MappedText) -> MappedText:
    mt = mt.sub(_SOFT_HYPHEN, lambda m: "")
    mt = mt.sub(_HYPHENATED, lambda m: "")
    mt = mt.sub(_HYPHEN_DIGITS, lambda m: m.group(1))
    mt = mt.sub(_WHITESPACE, lambda m: " ")
    return mt


def clean(text: str, ocr_repair: bool = True) -> MappedText:
    """Cleaned text (whitespace collapsed, hyphenation undone, OCR errors repaired) with its offset map."""
    from .ocr import repair

    mt = normalize_whitespace(MappedText.of(text))
    if ocr_repair:
        mt = repair(mt)
    return mt
