"""OCR repairs, applied to whitespace-normalised text (see :mod:`citations.clean`).

Each repair is local to something that parses as a citation and is checked against the reporter tables: a volume,
a reporter spelling that :func:`citations.reporters.lookup_reporter` maps to an edition that exists in reporters-db,
and a page (or "at" / a blank "___" page).  The repaired text uses that edition's canonical spelling.  Text that does
not parse that way is left alone, so a repair never invents a citation out of unrelated words.

Repairs:
- spacing and punctuation in reporter abbreviations: ``U.S.483`` -> ``U.S. 483``, ``U.S 335`` -> ``U.S. 335``,
  ``F. 3d`` / ``S.Ct.`` spellings are canonicalised only when eyecite would not accept them as written;
- look-alikes in reporters: ``U. 8S.`` -> ``U.S.``, ``F. 8d`` -> ``F.3d``, ``N.E.Zd`` -> ``N.E.2d``;
- ``l``/``I``/``O`` for ``1``/``0`` in the volume and page of such a citation: ``4l0 U.S. ll3`` -> ``410 U.S. 113``;
- ``$`` (and ``$$``, ``S``) for ``§`` after a code name: ``42 U.S.C. $ 1983`` -> ``42 U.S.C. § 1983``.
"""
from __future__ import annotations

import re

from .clean import MappedText
from .reporters import known_reporters, lookup_reporter

_DIGIT_LOOKALIKES = str.maketrans({"l": "1", "I": "1", "|": "1", "O": "0", "o": "0"})

_ANCHOR = re.compile(r"(?<![\w.,/§$\-–])([0-9][0-9lIO]{0,3}|[lI][0-9][0-9lIO]{0,2})(?= ?[A-Z])")
_TOKEN = re.compile(r"\S+")
_PAGE = re.compile(r"( ?)(?:([0-9lIO|]{0,4}[0-9][0-9lIO|]{0,4})(?![\w])|(at)\b|(_{2,}))")
_GLUED = re.compile(r"^(.*?[.,])([0-9lIO|]{0,4}[0-9][0-9lIO|]{0,4})([,;.)]?)$")


def _reporter_edits(text: str) -> list[tuple[int, int, str]]:
    edits: list[tuple[int, int, str]] = []
    known = known_reporters()
    last_end = 0
    for m in _ANCHOR.finditer(text):
        if m.start() < last_end:
            continue
        vol = m.group(1)
        p = m.end()
        gap = " " if text.startswith(" ", p) else ""
        rs = p + len(gap)
        toks = list(_TOKEN.finditer(text, rs, min(len(text), rs + 45)))[:6]
        for n in range(len(toks), 0, -1):
            tok = toks[n - 1]
            options = []  # (reporter raw, page match start, page text, page end, page gap)
            pm = _PAGE.match(text, tok.end())
            if pm:
                options.append((text[rs:tok.end()], pm))
            g = _GLUED.match(tok.group(0))
            if g and n == 1 or (g and n > 1):
                if g:
                    cut = tok.start() + len(g.group(1))
                    pm2 = _PAGE.match(text, cut)
                    if pm2 and pm2.group(1) == "":
                        options.append((text[rs:cut], pm2))
            done = False
            for raw, pm in options:
                comma = raw.endswith(",")
                core = raw.rstrip(",")
                if not core or ("." not in core and core not in known):
                    continue
                edition = lookup_reporter(core)
                if not edition:
                    continue
                page_raw = pm.group(2) or pm.group(3) or pm.group(4)
                page_gap = pm.group(1)
                exact = core in known and vol.isdigit() and gap == " " and page_gap == " " \
                    and (pm.group(2) is None or page_raw.isdigit())
                done = True
                if not exact:
                    rep = core if core in known else edition
                    page = page_raw.translate(_DIGIT_LOOKALIKES) if pm.group(2) else page_raw
                    new = f"{vol.translate(_DIGIT_LOOKALIKES)} {rep}{',' if comma else ''} {page}"
                    edits.append((m.start(), pm.end(), new))
                    last_end = pm.end()
                break
            if done:
                break
    return edits


_CODE_BEFORE_SECTION = re.compile(
    r"(?P<pre>\b(?:U\.? ?S\.? ?C\.?(?: ?A\.?)?|USC|C\.? ?F\.? ?R\.?|CFR|Code(?: Ann\.)?|Ann\.|Stat\.(?: Ann\.)?|"
    r"Const\.|Rev\.)[,]? ?)(?P<sym>\$\$|\$|SS|S|§\$|\$§|88|8)(?P<post> ?)(?=\d)"
)
_DOUBLE_DOLLAR = re.compile(r"(?<![\w$])\$\$(?= ?\d)")


def _section_symbol(m: re.Match[str]) -> str:
    sym = m.group("sym")
    if sym in ("S", "8") and not m.group("post"):
        return m.group(0)  # "C.F.R. 8123"? too risky without a space
    n = 2 if len(sym) == 2 else 1
    return m.group("pre") + "§" * n + (m.group("post") or " ")


def repair(mt: MappedText) -> MappedText:
    mt = mt.sub(_CODE_BEFORE_SECTION, _section_symbol, repair=True)
    mt = mt.sub(_DOUBLE_DOLLAR, lambda m: "§§", repair=True)
    edits = _reporter_edits(mt.text)
    if edits:
        mt = mt.replace(edits, repair=True)
    return mt
