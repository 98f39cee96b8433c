"""Where the tests find the repository, its samples and the shared corpus (importable from any test module,
unlike a conftest, of which there are several)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "data" / "samples"
# Real court filings and damaged PDFs, copied from the workplace's shared corpus with its SOURCES.md (attribution).
CORPUS = REPO / "tests" / "data" / "corpus"
