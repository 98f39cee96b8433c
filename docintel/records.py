"""Plain data carried between pipeline stages. A failure is data too: it travels with the page it belongs to."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class PageMethod(str, Enum):
    """How a page's text was obtained; stored per page so a reader can judge its reliability."""

    TEXT_LAYER = "text_layer"
    PDF2IMAGE_OCR = "pdf2image+ocr"
    GHOSTSCRIPT_OCR = "ghostscript+ocr"
    PLAIN_TEXT = "plain_text"
    FAILED = "failed"


@dataclass(frozen=True)
class SourceFile:
    """One input file, identified by the SHA-256 of its bytes."""

    path: str
    document_id: str
    size_bytes: int
    kind: str  # "pdf" | "txt"


@dataclass
class Word:
    """One OCR'd word with its box in PDF points (1/72 inch) from the page's top-left corner."""

    text: str
    left: float
    top: float
    width: float
    height: float
    confidence: float


@dataclass
class PageText:
    document_id: str
    page_number: int  # 1-based
    text: str
    method: PageMethod
    ocr_seconds: float = 0.0
    words: list[Word] = field(default_factory=list)
    error: str | None = None  # set when the page failed; text is then empty

    @property
    def failed(self) -> bool:
        return self.error is not None


@dataclass
class Chunk:
    chunk_id: str
    document_id: str
    source_path: str
    page_number: int
    page_start: int  # character offsets into the page text
    page_end: int
    doc_start: int  # character offsets into the document text (pages joined by PAGE_SEPARATOR)
    doc_end: int
    text: str
    citations: list[str] = field(default_factory=list)
    vector: list[float] | None = None
    heading: str = ""  # the headings the passage sits under ("ARTICLE I Definitions > 1.1 ..."); never in `text`


@dataclass
class Failure:
    source_path: str
    reason: str
    stage: str
    document_id: str = ""
    page_number: int = 0  # 0: the whole document
    retry_pending: bool = False


PAGE_SEPARATOR = "\n\n"


def error_reason(error: BaseException) -> str:
    """What a user reads about a failure: the message after the error's type, unless the message names the type
    already or the error exists to carry words meant for users (``plain_reason = True``)."""
    message = str(error)
    if getattr(error, "plain_reason", False) or message.startswith(type(error).__name__):
        return message
    return f"{type(error).__name__}: {message}"
