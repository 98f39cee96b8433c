"""Stage 4: page-aware passages that follow the structure of legal documents.

A page is first cut into structural blocks: articles, sections and numbered clauses of contracts ("ARTICLE VI",
"Section 7.1", "10.6 Specific Performance", "1.", "(a)"), headings of filings ("I. BACKGROUND", all-caps lines),
defined terms (“Knowledge” means ...) and footnotes. Blocks are packed into passages of about
``chunk_target_chars``; a new article or section always starts a new passage, and a block longer than the target
is cut into sentence windows that overlap by about ``chunk_overlap_chars``.

Every passage keeps its exact span: ``text == page_text[page_start:page_end]`` and the same slice of the document
text at ``doc_start:doc_end``. The headings a passage sits under (e.g. "ARTICLE I Definitions > 1.1 Definitions")
are kept apart, in ``heading_context()`` / ``chunk_headings()``, never spliced into the stored text.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from docintel.records import PAGE_SEPARATOR, Chunk, PageText

# A boundary is the position right after a sentence end or a line break; legal abbreviations ("v.", "U.S.",
# "No.", "Inc.") would otherwise split a citation in two.
_SENTENCE_END = re.compile(r"[.!?;:][\"'”’)\]]*(?=\s)|\n")
_ABBREVIATION = re.compile(
    r"(?:\b(?:v|vs|No|Nos|Inc|Corp|Co|Ltd|Cir|Dist|Ct|App|Supp|Mr|Mrs|Ms|Dr|Jr|Sr|St|Stat|Rev|Cal|Fed|Reg|Art|"
    r"Sec|art|sec|Id|id|al|e\.g|i\.e|cf|Cf|See|U\.S|F|S|L|Ed|[A-Z])\.)$"
)

# ---- structure -----------------------------------------------------------------------------------------------------
# Levels: 1 article / part / top heading, 2 section, 3 clause / defined term, 4 sub-clause, 5 footnote.
_ROMAN = r"[IVXLC]{1,7}"
_HEADING_PATTERNS: list[tuple[int, re.Pattern]] = [
    (1, re.compile(rf"(?:ARTICLE|Article|PART|Part|CHAPTER|Chapter|TITLE|Title|SCHEDULE|Schedule|EXHIBIT|Exhibit)\s+(?:{_ROMAN}|\d{{1,3}}|[A-Z])\b\.?")),
    (2, re.compile(r"(?:SECTION|Section|Sec\.|§{1,2})\s*\d{1,3}(?:\.\d{1,3})*[A-Za-z]?\b\.?")),
    (2, re.compile(r"\d{1,3}(?:\.\d{1,3})+\.?(?=\s+\S)")),  # "10.6 Specific Performance", "5.3.1 ..."
    (1, re.compile(rf"{_ROMAN}\.(?=\s+[A-Z])")),  # "II. BACKGROUND" (filings)
    (3, re.compile(r"\d{1,3}\.(?=\s+\S)")),  # "1. Definitions", numbered paragraphs
    (3, re.compile(r"[A-Z]\.(?=\s+[A-Z][a-z])")),  # "A. Standard of Review"
    (4, re.compile(r"\((?:[a-z]{1,2}|[ivxlc]{1,6}|\d{1,3}|[A-Z])\)(?=\s)")),  # "(a)", "(iv)", "(1)", "(A)"
]
_DEFINED_TERM = re.compile(r"[“\"][A-Z][^”\"\n]{0,80}[”\"]\s*(?:\([^)\n]{0,80}\)\s*)?(?:or\s+[^\n]{0,60}?\s*)?"
                           r"(?:means|shall mean|has the meaning|have the meaning|shall have the meaning|includes|refers)")
_FOOTNOTE = re.compile(r"(?:\d{1,3}|[*†‡])\s+(?=[A-Z\"“(])")
_LINE = re.compile(r"[^\n]*\n?")
_LETTER = re.compile(r"[A-Za-z]")


@dataclass(frozen=True)
class Block:
    """A structural unit of a page: [start, end) in the page text, the level it opens (0: plain paragraph) and,
    for a heading, its label as printed (e.g. "Section 7.1 Knowledge")."""

    start: int
    end: int
    level: int
    heading: str = ""


def _heading_label(line: str, matched: str, level: int) -> str:
    """The heading text of a structural line: the whole line when short, else its number and title up to the
    first sentence end ("Section 5.3 No Solicitation." of a long first paragraph)."""
    line = " ".join(line.split())
    if level >= 4:
        return ""  # "(a)" alone names nothing a reader would search for
    if len(line) <= 100:
        return line.rstrip(" .")
    rest = line[len(matched) :]
    stop = re.search(r"[.;:](?=\s)", rest)
    title = rest[: stop.start()] if stop and stop.start() <= 90 else rest[:60].rsplit(" ", 1)[0]
    return f"{matched.strip()} {title.strip()}".strip(" .")


def _is_caps_heading(line: str) -> bool:
    letters = _LETTER.findall(line)
    if len(letters) < 4 or len(line) > 100:
        return False
    upper = sum(ch.isupper() for ch in letters)
    return upper / len(letters) >= 0.9 and len(line.split()) <= 14 and not line.rstrip().endswith(",")


def structure_blocks(text: str) -> list[Block]:
    """Cut a page into structural blocks, line by line; every character belongs to exactly one block."""
    lines: list[tuple[int, str]] = []
    position = 0
    for match in _LINE.finditer(text):
        if not match.group():
            break
        lines.append((position, match.group()))
        position = match.end()
    starts: list[tuple[int, int, str]] = []  # (offset, level, heading)
    previous = ""  # the previous non-empty line, stripped
    previous_blank = True
    bottom = len(text) * 0.6
    for index, (offset, raw) in enumerate(lines):
        stripped = raw.strip()
        if not stripped:
            previous_blank = True
            continue
        lead = offset + (len(raw) - len(raw.lstrip()))
        body = raw.lstrip()
        # A numbered line opens a clause only at a paragraph start: after a blank line, a sentence end or a
        # heading. "...as set forth in\nSection 7.1 of the Disclosure Letter" is a wrapped line, not a heading.
        opens = previous_blank or previous.endswith((".", ":", ";", "—")) or (bool(starts) and starts[-1][1] > 0
                                                                             and starts[-1][0] >= offset - len(previous) - 8)
        level, heading = 0, ""
        if opens:
            for candidate_level, pattern in _HEADING_PATTERNS:
                found = pattern.match(body)
                if found:
                    level, heading = candidate_level, _heading_label(stripped, found.group(), candidate_level)
                    if candidate_level == 1 and len(stripped) <= 24:
                        # "ARTICLE VI" on its own line: the title is the next short non-empty line
                        following = next((l.strip() for _, l in lines[index + 1 : index + 4] if l.strip()), "")
                        if following and len(following) <= 100 and not any(p.match(following) for _, p in _HEADING_PATTERNS):
                            heading = f"{heading} {' '.join(following.split())}".strip()
                    break
            if not level and _DEFINED_TERM.match(body):
                level, heading = 3, ""
        if not level and previous_blank and _is_caps_heading(stripped):
            following = lines[index + 1][1].strip() if index + 1 < len(lines) else ""
            if not following or len(stripped) <= 60:
                level, heading = 1, " ".join(stripped.split())
        if not level and lead >= bottom and previous_blank and _FOOTNOTE.match(body):
            level, heading = 5, f"Footnote {body.split(None, 1)[0]}"
        if level or previous_blank:
            starts.append((lead, level, heading))
        previous_blank = False
        previous = stripped
    blocks: list[Block] = []
    if not starts or starts[0][0] > 0:
        starts.insert(0, (0, 0, ""))
    for (start, level, heading), following in zip(starts, starts[1:] + [(len(text), 0, "")]):
        if following[0] > start:
            blocks.append(Block(start, following[0], level, heading))
    return blocks


# ---- sentence windows ----------------------------------------------------------------------------------------------
def sentence_boundaries(text: str) -> list[int]:
    """Offsets just past each sentence end or line break, skipping abbreviations common in legal text."""
    boundaries = []
    for match in _SENTENCE_END.finditer(text):
        end = match.end()
        if text[match.start()] == "." and _ABBREVIATION.search(text[max(0, match.start() - 8) : match.start() + 1]):
            continue
        boundaries.append(end)
    return boundaries


def _chunk_id(document_id: str, page_number: int, start: int, end: int) -> str:
    return hashlib.sha256(f"{document_id}:{page_number}:{start}:{end}".encode()).hexdigest()[:32]


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _windows(text: str, lo: int, hi: int, target_chars: int, overlap_chars: int, boundaries: list[int]) -> list[tuple[int, int]]:
    """Sentence windows over text[lo:hi]: each ends at the last sentence boundary before start + target (or the
    last space, for a run-on sentence) and the next starts at a boundary inside the final ``overlap_chars``."""
    spans: list[tuple[int, int]] = []
    start = lo
    while start < hi:
        limit = start + target_chars
        if limit >= hi:
            end = hi
        else:
            candidates = [b for b in boundaries if start + target_chars // 3 < b <= limit]
            if candidates:
                end = candidates[-1]
            else:
                space = text.rfind(" ", start + target_chars // 3, limit)
                end = space if space > start else limit
        trimmed = _trim(text, start, end)
        if trimmed[1] > trimmed[0]:
            spans.append(trimmed)
        if end >= hi:
            break
        restart = [b for b in boundaries if end - overlap_chars <= b < end and b > start]
        if restart and overlap_chars:
            start = restart[0]
        elif overlap_chars:
            space = text.find(" ", max(end - overlap_chars, start + 1), end)
            start = space + 1 if space != -1 else end
        else:
            start = end
    return spans


def split_page(text: str, target_chars: int, overlap_chars: int, structure: bool = True) -> list[tuple[int, int]]:
    """(start, end) spans covering every non-blank character of the page.

    With ``structure``: structural blocks are packed greedily up to ``target_chars``; a level-1/2 heading (article,
    section) starts a new passage once the current one holds at least a quarter of the target, so a heading stays
    with its first paragraph; blocks longer than the target become overlapping sentence windows.
    Without: plain sentence windows over the whole page."""
    boundaries = sentence_boundaries(text)
    if not structure:
        return _windows(text, 0, len(text), target_chars, overlap_chars, boundaries)
    spans: list[tuple[int, int]] = []
    current: tuple[int, int] | None = None  # untrimmed [start, end) of the passage being packed
    minimum = target_chars // 4

    def flush() -> None:
        nonlocal current
        if current is not None:
            trimmed = _trim(text, *current)
            if trimmed[1] > trimmed[0]:
                spans.append(trimmed)
        current = None

    for block in structure_blocks(text):
        size = len(text[block.start : block.end].strip())
        if size == 0:
            if current is not None:
                current = (current[0], block.end)
            continue
        if current is not None:
            held = len(text[current[0] : current[1]].strip())
            hard = (1 <= block.level <= 2 or block.level == 5) and held >= minimum
            lead_in = size > target_chars and held < minimum  # a heading stays with the long block it opens
            if hard or (held + size > target_chars and not lead_in):
                flush()
        if size > target_chars:
            if current is not None:  # a short heading or lead-in stays with the start of the long block
                lo = current[0]
                current = None
            else:
                lo = block.start
            windows = _windows(text, lo, block.end, target_chars, overlap_chars, boundaries)
            spans.extend(windows)
            continue
        current = (block.start, block.end) if current is None else (current[0], block.end)
    flush()
    return spans


# ---- heading context -----------------------------------------------------------------------------------------------
def heading_trail(blocks: Sequence[Block], position: int, stack: list[tuple[int, str]] | None = None) -> list[str]:
    """The headings in force at ``position`` (outermost first), from the blocks before it."""
    stack = list(stack or [])
    for block in blocks:
        if block.start > position:
            break
        if block.level and block.heading:
            while stack and stack[-1][0] >= block.level:
                stack.pop()
            stack.append((block.level, block.heading))
    return [heading for _, heading in stack]


def heading_for_span(blocks: Sequence[Block], stack: list[tuple[int, str]], start: int, end: int) -> str:
    """Heading context of the passage [start, end): the headings in force at its end, so a passage that opens a
    section (or holds a title, an article and a section heading at once) is named by them."""
    return heading_context(heading_trail(blocks, max(start, end - 1), stack))


def heading_context(headings: Sequence[str], max_chars: int = 200) -> str:
    """One line naming where a passage sits, e.g. "ARTICLE I Definitions > 1.1 Definitions"."""
    line = " > ".join(headings)
    return line if len(line) <= max_chars else "… " + line[-max_chars:]


def chunk_headings(pages: Sequence[PageText], chunks: Sequence[Chunk]) -> dict[str, str]:
    """chunk_id -> heading context, carried across pages (a section continues on the next page)."""
    out: dict[str, str] = {}
    by_page: dict[int, list[Chunk]] = {}
    for chunk in chunks:
        by_page.setdefault(chunk.page_number, []).append(chunk)
    stack: list[tuple[int, str]] = []
    for page in pages:
        blocks = [b for b in structure_blocks(page.text) if b.level and b.heading]
        for chunk in by_page.get(page.page_number, []):
            out[chunk.chunk_id] = heading_for_span(blocks, stack, chunk.page_start, chunk.page_end)
        stack = stack_after(blocks, stack)
    return out


def stack_after(blocks: Sequence[Block], stack: list[tuple[int, str]]) -> list[tuple[int, str]]:
    stack = list(stack)
    for block in blocks:
        if block.heading.startswith("Footnote"):
            continue  # a footnote ends its page; the next page goes on under the section's own headings
        while stack and stack[-1][0] >= block.level:
            stack.pop()
        stack.append((block.level, block.heading))
    return stack


def embedding_text(chunk: Chunk) -> str:
    """What to embed for a passage: its heading context (if any) on a line before its exact text."""
    heading = getattr(chunk, "heading", "") or ""
    return f"{heading}\n{chunk.text}" if heading else chunk.text


# ---- passages -------------------------------------------------------------------------------------------------------
def chunk_pages(
    pages: Sequence[PageText],
    source_path: str,
    target_chars: int,
    overlap_chars: int,
    page_offsets: Sequence[int],
    structure: bool | None = None,
) -> list[Chunk]:
    """Passages for every page; ``page_offsets[i]`` is where page i starts in the document text. Each chunk gets a
    ``heading`` (its heading context; a Chunk field when records.py has one, else a plain attribute)."""
    if structure is None:
        from docintel.settings import get_settings

        structure = get_settings().chunk_structure
    chunks = []
    for page, page_offset in zip(pages, page_offsets):
        for start, end in split_page(page.text, target_chars, overlap_chars, structure):
            chunks.append(
                Chunk(
                    chunk_id=_chunk_id(page.document_id, page.page_number, start, end),
                    document_id=page.document_id,
                    source_path=source_path,
                    page_number=page.page_number,
                    page_start=start,
                    page_end=end,
                    doc_start=page_offset + start,
                    doc_end=page_offset + end,
                    text=page.text[start:end],
                )
            )
    headings = chunk_headings(pages, chunks)
    for chunk in chunks:
        chunk.heading = headings.get(chunk.chunk_id, "")
    return chunks


def page_offsets(pages: Sequence[PageText]) -> list[int]:
    """Where each page starts in the document text, which is the pages joined by PAGE_SEPARATOR."""
    offsets, position = [], 0
    for page in pages:
        offsets.append(position)
        position += len(page.text) + len(PAGE_SEPARATOR)
    return offsets


def document_text(pages: Sequence[PageText]) -> str:
    return PAGE_SEPARATOR.join(page.text for page in pages)
