"""Progress events from a running ingest to whoever shows them (the CLI's progress bar). Flows stay UI-free."""

from __future__ import annotations

from typing import Protocol


class ProgressListener(Protocol):
    def add_work(self, documents: int, pages: int) -> None: ...
    def page_done(self, source_path: str, page_number: int) -> None: ...
    def document_done(self, source_path: str, status: str) -> None: ...


class _Silent:
    def add_work(self, documents: int, pages: int) -> None: ...
    def page_done(self, source_path: str, page_number: int) -> None: ...
    def document_done(self, source_path: str, status: str) -> None: ...


_listener: ProgressListener = _Silent()


def set_listener(listener: ProgressListener | None) -> None:
    global _listener
    _listener = listener or _Silent()


def listener() -> ProgressListener:
    return _listener
