"""Bounded fuzz run over the PDF-opening path: mutated real PDFs through the same probe and renderers as ingest.

    python benchmarks/fuzz_pdfs.py [--files 300] [--seed 1]

Each mutated file must end, within the document time limit, either opened (pages counted, first page rendered
for OCR where it has no good text layer) or refused with a reason; a hang past the limit or a crash of this
process is a finding. Prints the counts (README, reliability section).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from docintel.settings import Settings  # noqa: E402
from tasks.pages import DocumentError, RenderError, probe_pdf, render_page, text_layer_is_good  # noqa: E402

SEEDS = sorted((REPO / "data" / "samples").glob("*.pdf")) + sorted((REPO / "tests" / "data" / "corpus" / "broken").glob("qpdf-*.pdf"))


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One of: flip bytes, truncate, cut a hole, duplicate a span, overwrite numbers (xref offsets, lengths)."""
    data = bytearray(data)
    kind = rng.choice(["flip", "truncate", "hole", "duplicate", "numbers"])
    if kind == "flip" or len(data) < 64:
        for _ in range(rng.randint(1, 50)):
            if data:
                data[rng.randrange(len(data))] = rng.randrange(256)
    elif kind == "truncate":
        data = data[: rng.randrange(8, len(data))]
    elif kind == "hole":
        start = rng.randrange(len(data))
        del data[start : start + rng.randint(1, 4096)]
    elif kind == "duplicate":
        start = rng.randrange(len(data))
        chunk = data[start : start + rng.randint(1, 4096)]
        insert = rng.randrange(len(data))
        data[insert:insert] = chunk * rng.randint(1, 20)
    else:
        digits = [i for i, byte in enumerate(data) if 48 <= byte <= 57]
        for index in rng.sample(digits, min(len(digits), rng.randint(1, 30))):
            data[index] = rng.randint(48, 57)
    return bytes(data)


def fuzz(count: int, seed: int, settings: Settings) -> dict:
    rng = random.Random(seed)
    outcomes: Counter = Counter()
    reasons: Counter = Counter()
    slowest = 0.0
    with tempfile.TemporaryDirectory(prefix="docintel-fuzz-") as scratch:
        for index in range(count):
            source = rng.choice(SEEDS)
            path = Path(scratch) / f"fuzz-{index:04d}.pdf"
            path.write_bytes(mutate(source.read_bytes(), rng))
            started = time.perf_counter()
            try:
                probe = probe_pdf(path, settings)
                first = probe.pages[0]
                if not text_layer_is_good(first.text, settings):
                    render_page(path, 1, settings)
                outcomes["ingested"] += 1
            except (DocumentError, RenderError) as error:
                outcomes["failed with reason"] += 1
                reasons[str(error)[:90]] += 1
            elapsed = time.perf_counter() - started
            slowest = max(slowest, elapsed)
            limit = settings.document_timeout_seconds + settings.render_timeout_seconds + settings.ghostscript_timeout_seconds
            if elapsed > limit:
                outcomes["hung"] += 1
    return {"tried": count, **outcomes, "hung": outcomes["hung"], "slowest_seconds": round(slowest, 2), "reasons": dict(reasons)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    arguments = parser.parse_args()
    result = fuzz(arguments.files, arguments.seed, Settings(document_timeout_seconds=60, render_timeout_seconds=60))
    for key, value in result.items():
        print(f"{key}: {value}")
