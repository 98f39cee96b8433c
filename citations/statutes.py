"""Federal statutes and regulations (U.S.C., C.F.R.), public laws and the U.S. Constitution, by regex.

Tolerant of what eyecite 2.7.8 misses: ``42 USC 1983``, ``42 U.S.C. 1983`` (no §), ``42 U. S. C. §1983``,
``U.S.C.A.``, ``§§ 1983, 1985`` (one citation per section).  ``$`` for ``§`` is repaired before (see :mod:`.ocr`).
Works on cleaned text; returns spans in cleaned coordinates.  State codes are left to eyecite's law tables.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_SECTION = r"\d+[a-zA-Z]{0,3}(?:[-–.:]\d+[a-zA-Z]{0,3})*"
_SUBSECTION = r"(?:\([a-zA-Z0-9]{1,5}\))*"

_CODE = re.compile(
    r"(?<![\w.])(?P<title>\d{1,2}) ?"
    r"(?P<code>U\. ?S\. ?C\. ?A\.|U\. ?S\. ?C\.|U\.S\.C(?![\w.])|USCA\b|USC\b|C\. ?F\. ?R\.|CFR\b)"
    r",? ?(?P<sym>§§|§|[Ss]ecs?\.|[Ss]ections?|)"
    rf" ?(?P<section>{_SECTION})(?P<sub>{_SUBSECTION})"
    r"(?P<etseq>,? et seq\.)?"
)
_MORE_SECTIONS = re.compile(rf"(?:,| and| &|, and) ?(?P<section>{_SECTION})(?P<sub>{_SUBSECTION})(?![\w])")
_PUBLIC_LAW = re.compile(r"\bPub\. ?L(?:\.|aw) ?(?:No\. ?)?(?P<congress>\d{2,3}) ?[-–] ?(?P<number>\d{1,4})\b")
_CONSTITUTION = re.compile(
    r"\bU\. ?S\. Const\.,? (?P<part>art\.|amend\.|pmbl\.)(?: (?P<num>[IVXLC]+|\d+))?"
    r"(?:, ?(?P<sec>§ ?\d+))?(?:, ?(?P<cl>cl\. ?\d+))?"
)


def _state_tables() -> tuple[dict[str, str], dict[str, str]]:
    from reporters_db import CASE_NAME_ABBREVIATIONS, STATE_ABBREVIATIONS

    states: dict[str, str] = {}
    for abbr, full in STATE_ABBREVIATIONS.items():
        states[abbr.lower()] = abbr
        states[abbr.lower().rstrip(".")] = abbr
        states[full.lower()] = abbr
    words: dict[str, str] = {}
    for abbr, fulls in CASE_NAME_ABBREVIATIONS.items():
        for full in fulls:
            words.setdefault(full.lower(), abbr)
        words.setdefault(abbr.lower(), abbr)
    words.update({"and": "&", "civil": "Civ.", "practice": "Prac.", "remedies": "Rem.", "penal": "Penal",
                  "criminal": "Crim.", "procedure": "Proc.", "family": "Fam.", "labor": "Lab.", "government": "Gov't",
                  "health": "Health", "safety": "Safety", "commerce": "Com.", "business": "Bus.",
                  "insurance": "Ins.", "property": "Prop.", "probate": "Prob.", "vehicle": "Veh.",
                  "general": "Gen.", "revised": "Rev.", "compiled": "Comp.", "statutes": "Stat.",
                  "code": "Code", "laws": "Laws", "law": "Law", "annotated": "Ann."})
    return states, words


_STATES, _WORDS = _state_tables()
_STATE_ALT = "|".join(sorted((re.escape(k) for k in _STATES if len(k) > 2 or k in ("ga", "pa", "vt", "wis")),
                             key=len, reverse=True))
_STATE_CODE = re.compile(
    rf"\b(?P<state>{_STATE_ALT})\.? (?P<subject>(?:(?:[A-Z][\w'’]*\.?|&|and|of) ){{0,6}}?)"
    r"(?P<kind>Code|Stat\.|Statutes|Laws|Law|Gen\. Laws|Comp\. Laws|Rev\. Stat\.|Consol\. Stat\.)"
    r"(?: Ann\.| Annotated)?,? (?P<sym>§§|§|[Ss]ec\.|[Ss]ection) ?"
    rf"(?P<section>{_SECTION})(?P<sub>{_SUBSECTION})",
    re.IGNORECASE,
)


def _abbreviate(words: str) -> str:
    out = []
    for w in words.split():
        key = w.lower()
        if key in _WORDS:
            out.append(_WORDS[key])
        elif key.rstrip(".") in _WORDS and _WORDS[key.rstrip(".")].endswith("."):
            out.append(_WORDS[key.rstrip(".")])
        elif w.isupper() and len(w) > 1:
            out.append(w[0] + w[1:].lower())
        else:
            out.append(w)
    return " ".join(out)


def state_code_name(state: str, subject: str, kind: str) -> str:
    """Canonical name of a state code: "TEX. INS. CODE" / "Texas Insurance Code" -> "Tex. Ins. Code"."""
    st = _STATES.get(state.lower().rstrip("."), _STATES.get(state.lower(), state))
    return " ".join(x for x in (st, _abbreviate(subject), _abbreviate(kind)) if x)


_SECTION_WORD = re.compile(r"§|\b[Ss][Ee][Cc]")


def _state_code_matches(text: str):
    """_STATE_CODE matches, searched only in windows before a "§"/"sec" (the big alternation is slow on 1 MB)."""
    last = 0
    for sm in _SECTION_WORD.finditer(text):
        lo = max(last, sm.start() - 100)
        for m in _STATE_CODE.finditer(text, lo, min(len(text), sm.end() + 40)):
            if m.start("sym") == sm.start():
                last = m.end()
                yield m
                break


@dataclass
class StatuteMatch:
    kind: str  # "statute" | "regulation" | "session_law" | "other"
    start: int
    end: int
    title: str = ""
    code: str = ""  # canonical: "U.S.C." / "C.F.R." / "Pub. L. No." / "U.S. Const."
    section: str = ""
    pin_cite: str = ""


def _code_name(raw: str) -> str:
    return "C.F.R." if "C" == raw.replace(" ", "").replace(".", "")[0] else "U.S.C."


def find_statutes(text: str) -> list[StatuteMatch]:
    out: list[StatuteMatch] = []
    for m in _CODE.finditer(text):
        raw_code = m.group("code")
        if m.group("sym") == "" and "." not in raw_code and raw_code[-1] == "C" and not m.group("title"):
            continue
        code = _code_name(raw_code)
        kind = "regulation" if code == "C.F.R." else "statute"
        section = m.group("section").replace("–", "-").rstrip(".:")
        end = m.start("section") + len(section) + len(m.group("sub"))
        pin = m.group("sub")
        if m.group("sym") == "§§" and not pin:
            # a range of sections: "§§ 2000cc-2000cc-5" -> § 2000cc, pin "to 2000cc-5"
            head = re.match(r"\d+", section).group(0)
            k = section.find("-" + head, 1)
            if k > 0:
                pin = "to " + section[k + 1:]
                section = section[:k]
        if m.group("etseq"):
            pin = (pin + " et seq.").strip()
            end = m.end("etseq")
        out.append(StatuteMatch(kind, m.start(), end, m.group("title"), code, section, pin))
        if m.group("sym") == "§§" or m.group("sym").lower().startswith(("secs", "sections")):
            pos = end
            while True:
                more = _MORE_SECTIONS.match(text, pos)
                if not more:
                    break
                sec = more.group("section").replace("–", "-").rstrip(".:")
                s = more.start("section")
                e = s + len(sec) + len(more.group("sub"))
                out.append(StatuteMatch(kind, s, e, m.group("title"), code, sec, more.group("sub")))
                pos = e
    taken = [(x.start, x.end) for x in out]
    for m in _state_code_matches(text):
        if any(a < m.end() and m.start() < b for a, b in taken):
            continue
        if not (m.group("state")[0].isupper()):
            continue
        name = state_code_name(m.group("state"), m.group("subject"), m.group("kind"))
        section = m.group("section").replace("–", "-").rstrip(".:")
        end = m.start("section") + len(section) + len(m.group("sub"))
        out.append(StatuteMatch("statute", m.start(), end, "", name, section, m.group("sub")))
    for m in _PUBLIC_LAW.finditer(text):
        out.append(StatuteMatch("session_law", m.start(), m.end(), m.group("congress"), "Pub. L. No.",
                                m.group("number")))
    for m in _CONSTITUTION.finditer(text):
        part = m.group("part")
        num = m.group("num") or ""
        sec = (m.group("sec") or "").replace("§", "§ ").replace("  ", " ")
        cl = (m.group("cl") or "").replace("cl.", "cl. ").replace("  ", " ")
        section = " ".join(x for x in (part, num) if x)
        pin = ", ".join(x for x in (sec, cl) if x)
        out.append(StatuteMatch("other", m.start(), m.end(), "", "U.S. Const.", section, pin))
    return out
