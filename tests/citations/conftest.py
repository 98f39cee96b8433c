import json
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DATA = HERE / "data"
EXPECTED = HERE / "expected"
DOCUMENTS = {
    "scotus-slip-opinion": "scotus-slip-opinion.txt",
    "ca1_00117684624": "ca1_00117684624.txt",
    "ca5_00516242060": "ca5_00516242060.txt",
}


def read_pages(path: Path) -> list[str]:
    pages = path.read_text(encoding="utf-8").split("\f")
    if len(pages) > 1 and not pages[-1].strip():
        pages.pop()
    return pages


@pytest.fixture(scope="session")
def corpus():
    """name -> (clean pages, OCR pages, expected citations)"""
    out = {}
    for name, text_file in DOCUMENTS.items():
        exp = json.loads((EXPECTED / f"{name}.json").read_text(encoding="utf-8"))["citations"]
        out[name] = (read_pages(DATA / text_file), read_pages(DATA / "ocr" / f"{name}.ocr.txt"), exp)
    return out


@pytest.fixture(scope="session", autouse=True)
def prefect_harness():
    """The citation engine needs no Prefect server: overrides tests/conftest.py's session harness for this folder."""
    yield
