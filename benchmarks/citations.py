"""Citation engine benchmark.

    python benchmarks/citations.py                # precision/recall (clean + OCR, ours vs plain eyecite),
                                                  # reporters-db example rate, 1 MB timing
    python benchmarks/citations.py --refresh-ocr  # re-render + re-OCR the test documents with Tesseract
    python benchmarks/citations.py --skip-timing  # everything but the 1 MB timing

The OCR fixtures live in tests/citations/data/ocr/ (one text file per document, pages separated by form feeds).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT / "tests" / "citations" / "data"
EXPECTED = ROOT / "tests" / "citations" / "expected"
OCR_DIR = DATA / "ocr"

# name -> (clean text file, source PDF or None when the text itself is typeset)
DOCUMENTS = {
    "scotus-slip-opinion": ("scotus-slip-opinion.txt", None),
    "ca1_00117684624": ("ca1_00117684624.txt", "ca1_00117684624.pdf"),
    "ca5_00516242060": ("ca5_00516242060.txt", "ca5_00516242060.pdf"),
}

DPI = 200


def read_pages(path: Path) -> list[str]:
    """Pages of a text file whose pages are separated by form feeds (a trailing empty page is dropped)."""
    pages = path.read_text(encoding="utf-8").split("\f")
    if len(pages) > 1 and not pages[-1].strip():
        pages.pop()
    return pages


# --------------------------------------------------------------------------------------------- OCR
def typeset_text_pages(pages: list[str], out_dir: Path) -> list[Path]:
    """Render text pages (monospace, like the slip opinion's layout) to 200-dpi PNG pages, via a PDF."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf", 27)
    width, height = int(8.5 * DPI), int(11 * DPI)
    images = []
    for text in pages:
        img = Image.new("L", (width, height), 255)
        draw = ImageDraw.Draw(img)
        y = 120
        for line in text.split("\n"):
            draw.text((80, y), line.expandtabs(), font=font, fill=0)
            y += 44
        images.append(img.convert("1"))
    pdf = out_dir / "typeset.pdf"
    images[0].save(pdf, save_all=True, append_images=images[1:], resolution=DPI)
    return render_pdf(pdf, out_dir)


def render_pdf(pdf: Path, out_dir: Path) -> list[Path]:
    subprocess.run(["pdftoppm", "-r", str(DPI), "-gray", "-png", str(pdf), str(out_dir / "page")], check=True)
    return sorted(out_dir.glob("page-*.png"))


def tesseract(png: Path) -> str:
    env = dict(os.environ, OMP_THREAD_LIMIT="1")
    out = subprocess.run(["tesseract", str(png), "-", "-l", "eng"], env=env, check=True,
                         capture_output=True, text=True)
    return out.stdout


def refresh_ocr() -> None:
    OCR_DIR.mkdir(parents=True, exist_ok=True)
    for name, (text_file, pdf_file) in DOCUMENTS.items():
        t0 = time.time()
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            if pdf_file:
                pngs = render_pdf(DATA / pdf_file, tmp)
            else:
                pngs = typeset_text_pages(read_pages(DATA / text_file), tmp)
            with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
                texts = list(pool.map(tesseract, pngs))
        (OCR_DIR / f"{name}.ocr.txt").write_text("\f".join(texts), encoding="utf-8")
        print(f"OCR {name}: {len(pngs)} pages in {time.time() - t0:.1f}s")


# ------------------------------------------------------------------------------------------ scores
def load_expected(name: str) -> list[dict]:
    return json.loads((EXPECTED / f"{name}.json").read_text(encoding="utf-8"))["citations"]


def accuracy() -> None:
    from citations.evaluate import Score, ours, plain_eyecite, score

    runs = {
        "ours": lambda pages: ours(pages),
        "ours, OCR repair off": lambda pages: ours(pages, ocr_repair=False),
        "plain eyecite": lambda pages: plain_eyecite(pages),
        "eyecite + clean_text(all_whitespace)": lambda pages: plain_eyecite(pages, clean=True),
    }
    for source in ("clean", "ocr"):
        print(f"\n== {source} text: precision / recall (match = page, kind, authority); normalized = share of "
              f"matched citations whose Bluebook form is exact")
        totals = {label: Score(0, 0, 0, 0) for label in runs}
        for name, (text_file, _) in DOCUMENTS.items():
            pages = read_pages(DATA / text_file) if source == "clean" else read_pages(OCR_DIR / f"{name}.ocr.txt")
            exp = load_expected(name)
            for label, run in runs.items():
                sc = score(run(pages), exp)
                totals[label] = totals[label] + sc
                print(f"  {name:22s} {label:38s} P={sc.precision:.3f} R={sc.recall:.3f}"
                      + (f" normalized={sc.normalized_rate:.3f}" if label.startswith("ours") else "")
                      + f"  ({sc.matched}/{sc.expected} expected, {sc.found} found)")
        for label, sc in totals.items():
            print(f"  {'ALL':22s} {label:38s} P={sc.precision:.3f} R={sc.recall:.3f}"
                  + (f" normalized={sc.normalized_rate:.3f}" if label.startswith("ours") else "")
                  + f"  ({sc.matched}/{sc.expected} expected, {sc.found} found)")


def reporters_db_rate() -> None:
    from citations.evaluate import check_example, reporters_db_examples

    examples = reporters_db_examples()
    results = [(ex, *check_example(ex, eds)) for ex, eds in examples]
    found = sum(1 for _, f, _, _ in results if f)
    norm = sum(1 for _, _, n, _ in results if n)
    print(f"\n== reporters-db examples: {len(examples)}; found {found} ({found / len(examples):.1%}), "
          f"found and normalised correctly {norm} ({norm / len(examples):.1%})")
    for ex, f, n, got in results:
        if not n:
            print(f"  miss: {ex!r} -> {got!r}")


def dense_text(size: int = 1_000_000) -> str:
    base = "\n\n".join("\n\n".join(read_pages(DATA / tf)) for tf, _ in DOCUMENTS.values())
    return (base * (size // len(base) + 1))[:size]


def timing() -> None:
    from citations import find_citations

    text = dense_text()
    find_citations(text[:20_000])  # warm up (imports, reporter tables)
    t0, c0 = time.perf_counter(), time.process_time()
    found = find_citations(text)
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    load = os.getloadavg()[0]
    print(f"\n== 1 MB citation-dense text ({len(text):,} chars, the three test documents repeated): "
          f"{len(found):,} citations in {dt:.1f} s wall, {dc:.1f} s CPU (target <= 10 s; load average {load:.1f})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--refresh-ocr", action="store_true", help="re-render and re-OCR the test documents")
    ap.add_argument("--skip-timing", action="store_true", help="skip the 1 MB timing")
    args = ap.parse_args(argv)
    if args.refresh_ocr:
        refresh_ocr()
        return 0
    accuracy()
    reporters_db_rate()
    if not args.skip_timing:
        timing()
    return 0


if __name__ == "__main__":
    sys.exit(main())
