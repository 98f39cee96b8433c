"""Legal query handling: what in a question names a document, cites an authority or quotes a phrase.

    "Consider the Acquisition Agreement between Parent "LVMH ..." and Target "Tiffany & Co."; What is the
     Definition of "Knowledge""
        -> documents: the one whose file name carries "Tiffany"/"LVMH"; phrases: ["Knowledge"];
           retrieval text: 'What is the Definition of "Knowledge"'
    "cases applying 42 U.S.C. § 1983"  -> citations: ["42 U.S.C. § 1983"]

Documents are matched on the distinctive words of their file names (generic words such as "agreement", "inc" or
"policy" never name a document). A match on a capitalised or quoted word, or on two name words, scopes the search
to that document; a lower-case single word only boosts it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

_QUOTED = re.compile(r"[\"“”]([^\"“”]{1,200})[\"“”]")
_WORD = re.compile(r"[A-Za-zÀ-ÿ][A-Za-zÀ-ÿ'’&-]*[A-Za-zÀ-ÿ]|[A-Za-zÀ-ÿ]")
_NAME_SPLIT = re.compile(r"[^A-Za-zÀ-ÿ0-9]+|(?<=[a-z])(?=[A-Z])")
_CITATION_HINT = re.compile(r"\d+\s*(?:[A-Z][A-Za-z.\d]{0,12}\s?){1,4}\s*§*\s*\d+|§")
_LEADING_CLAUSE = re.compile(r"((?:In|Under|For|Consider|Regarding|Per|From)\s[^,;?]{1,150}),\s+")
_CLAUSE = re.compile(r"(?<=[;?])\s+|(?<=\.)\s+(?=[A-Z])")

# Words that occur in many legal file names and titles and so name no particular document.
GENERIC_NAME_WORDS = frozenset(
    """a an and of the for to in on with by between among from at as or vs v re
    agreement agreements contract contracts amendment amended restated addendum exhibit schedule annex appendix
    confidentiality confidential nondisclosure non disclosure nda mutual template form standard version rev revised
    effective dated final draft copy executed signed license licence licensing services service supply purchase
    sale merger acquisition plan reorganization transaction investment employment consulting affiliate agency
    privacy policy policies terms conditions notice statement order opinion brief complaint motion filing filed
    memorandum exhibit declaration transcript judgment case court document documents file content contents
    inc incorporated corp corporation co company companies llc llp lp ltd limited plc sa se ag gmbh nv bv holding
    holdings group global international management capital partners partnership trust fund bank financial
    technologies technology systems solutions enterprises industries led buyout new york city data use top party
    parties parent target buyer seller acquirer txt pdf doc docx content consider see regarding about""".split()
)


@dataclass
class ParsedQuery:
    text: str  # the query as typed
    retrieval_text: str  # what the retrievers see: the question without the clause that only names a document
    phrases: list[str] = field(default_factory=list)  # quoted phrases (not document names) that must match exactly
    documents: list[str] = field(default_factory=list)  # document ids the query names (scopes the search)
    boost_documents: list[str] = field(default_factory=list)  # weakly named: boosted, not filtered
    citations: list[str] = field(default_factory=list)  # authority keys cited in the query
    notes: list[str] = field(default_factory=list)


def name_words(file_name: str) -> set[str]:
    """Distinctive words of a file name: "TIFFANY_&_CO._LVMH_MOËT_HENNESSY-LOUIS_VUITTON.txt" -> tiffany, lvmh, ..."""
    stem = Path(unquote(file_name)).stem
    words = {w.lower() for w in _NAME_SPLIT.split(stem) if w}
    return {w for w in words if len(w) >= 3 and not w.isdigit() and w not in GENERIC_NAME_WORDS}


def _authority_keys(text: str) -> list[str]:
    if not _CITATION_HINT.search(text):
        return []
    try:
        from citations import find_citations
    except ImportError:  # the citation engine is optional for search
        return []
    keys = []
    for citation in find_citations(text):
        if citation.kind in ("case", "statute", "regulation", "session_law", "journal", "other") and citation.authority:
            keys.append(citation.authority)
    return list(dict.fromkeys(keys))


def _only_names(clause: str, name_hits: set[str]) -> bool:
    if not {w.lower() for w in _WORD.findall(clause)} & name_hits:
        return False
    unquoted = _QUOTED.sub(" ", clause)
    for word in _WORD.findall(unquoted):
        lower = word.lower()
        if lower in name_hits or lower in GENERIC_NAME_WORDS or lower in ("'s", "s") or word[0].isupper():
            continue
        return False
    return True


def parse_query(query: str, documents: list[dict]) -> ParsedQuery:
    """``documents``: rows with ``document_id`` and ``file_name`` (the documents table)."""
    parsed = ParsedQuery(text=query, retrieval_text=query)
    quoted = [m.group(1).strip() for m in _QUOTED.finditer(query)]
    words_by_document = {row["document_id"]: name_words(row["file_name"] or "") for row in documents}
    frequency: dict[str, int] = {}
    for words in words_by_document.values():
        for word in words:
            frequency[word] = frequency.get(word, 0) + 1
    limit = max(2, len(documents) // 5)  # a word in many file names names none of them
    query_words = _WORD.findall(query)
    quoted_words = {w.lower() for phrase in quoted for w in _WORD.findall(phrase)}
    strong, weak, name_hits = [], [], set()
    for document_id, words in words_by_document.items():
        distinctive = {w for w in words if frequency[w] <= limit}
        matched = [w for w in query_words if w.lower() in distinctive]
        if not matched:
            continue
        name_hits.update(w.lower() for w in matched)
        capitalised = any(w[0].isupper() or w.lower() in quoted_words for w in matched)
        (strong if capitalised or len({w.lower() for w in matched}) >= 2 else weak).append(document_id)
    parsed.documents, parsed.boost_documents = strong, [d for d in weak if d not in strong]

    # A clause that only names a document ("Consider the Acquisition Agreement between Parent "X" and Target "Y"")
    # scopes the search and is left out of ranking: besides generic words it holds only name words, quoted names
    # and capitalised words. Its quoted strings are names, not phrases to match.
    lead = _LEADING_CLAUSE.match(query)
    if lead and len(re.findall(r"[\"“”]", lead.group(1))) % 2:
        lead = None  # the comma is inside a quoted name ("Ocala Bidco, Inc."), not the end of a clause
    clauses = ([lead.group(1)] if lead else []) + [c for c in _CLAUSE.split(query[lead.end() if lead else 0 :]) if c.strip()]
    naming = [c for c in clauses if (strong or parsed.boost_documents) and _only_names(c, name_hits)]
    if naming and len(naming) < len(clauses):
        parsed.retrieval_text = " ".join(c for c in clauses if c not in naming)
        parsed.notes.append("the clause naming the document scoped the search and was left out of ranking")
    naming_quotes = {m.group(1).strip() for c in naming for m in _QUOTED.finditer(c)}
    for phrase in quoted:
        phrase_words = {w.lower() for w in _WORD.findall(phrase)}
        if phrase in naming_quotes or not phrase_words or phrase_words <= name_hits | GENERIC_NAME_WORDS:
            continue
        parsed.phrases.append(phrase)
    parsed.citations = _authority_keys(query)
    return parsed
