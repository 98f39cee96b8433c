"""Stage 1: find the input files and identify each by the SHA-256 of its bytes."""

from __future__ import annotations

import glob
import hashlib
from pathlib import Path

from docintel.records import Failure, SourceFile

SUPPORTED_SUFFIXES = {".pdf": "pdf", ".txt": "txt"}


def sha256_of_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def expand_inputs(inputs: list[str]) -> tuple[list[Path], list[Failure]]:
    """Files, folders (recursively) and glob patterns to a sorted, de-duplicated list of supported files.
    Inputs that match nothing are reported, not silently dropped."""
    found: dict[Path, None] = {}
    missing: list[Failure] = []
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            candidates = sorted(p for p in path.rglob("*") if p.is_file())
        elif path.is_file():
            candidates = [path]
        elif glob.has_magic(raw):
            candidates = sorted(Path(p) for p in glob.glob(raw, recursive=True) if Path(p).is_file())
        else:
            candidates = []
        chosen = [p for p in candidates if p.suffix.lower() in SUPPORTED_SUFFIXES or p == path]
        if not chosen:
            missing.append(Failure(source_path=raw, reason="no such file, or no .pdf/.txt file matched", stage="identify"))
        for candidate in chosen:
            found[candidate.resolve()] = None
    return list(found), missing


def identify(path: Path) -> SourceFile:
    kind = SUPPORTED_SUFFIXES.get(path.suffix.lower(), "pdf")
    return SourceFile(path=str(path), document_id=sha256_of_file(path), size_bytes=path.stat().st_size, kind=kind)
