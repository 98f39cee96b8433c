"""The three model interfaces. Each backend implements one; the pipeline knows only these."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from PIL.Image import Image

from docintel.records import Word


@dataclass
class OcrResult:
    text: str
    words: list[Word] = field(default_factory=list)


class OcrBackend(Protocol):
    name: str

    def recognize(self, image: Image, dpi: int) -> OcrResult:
        """Read one page image rendered at ``dpi``; word boxes are returned in PDF points when known."""


class Embedder(Protocol):
    model_name: str
    dimension: int

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed passages in one batch; vectors are L2-normalised."""

    def embed_query(self, text: str) -> list[float]:
        """Embed one search query; may use a query prefix or fewer threads than batches."""


@dataclass
class Passage:
    """A retrieved passage as the reasoner sees it: numbered by its position, with its source and page."""

    number: int
    source: str
    page: int
    text: str


@dataclass
class Reasoning:
    answer: str
    reasoning: str = ""  # the model's chain of thought, kept apart from the answer
    model: str = ""


class Reasoner(Protocol):
    name: str

    def answer(self, question: str, passages: Sequence[Passage]) -> Reasoning:
        """Answer from the passages only, citing them as [n]."""

    def stream_answer(self, question: str, passages: Sequence[Passage]) -> Iterator[str]:
        """Yield answer tokens as they arrive (backends that cannot stream yield the whole answer once)."""
