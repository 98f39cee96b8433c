"""Make an image-only "scan" of a born-digital filing, so OCR can be scored against the filing's own text layer.

Each page is rasterised with pdftoppm, rotated slightly, given sensor noise and JPEG compression, and the images
are wrapped back into a PDF with no text layer.

    python data/make_scanned_sample.py SOURCE.pdf OUT.pdf [--dpi 200] [--seed 7]
"""

from __future__ import annotations

import argparse
import io
import random
import subprocess
import tempfile
from pathlib import Path

from PIL import Image, ImageFilter


def scan_page(image: Image.Image, rng: random.Random) -> Image.Image:
    page = image.convert("L").rotate(rng.uniform(-0.8, 0.8), resample=Image.BICUBIC, expand=False, fillcolor=255)
    page = page.filter(ImageFilter.GaussianBlur(radius=0.6))
    page = Image.blend(page, Image.effect_noise(page.size, 40).convert("L"), 0.08)
    buffer = io.BytesIO()
    page.save(buffer, "JPEG", quality=55)
    buffer.seek(0)
    return Image.open(buffer).convert("L")


def make_scan(source: Path, target: Path, dpi: int = 200, seed: int = 7) -> int:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run(["pdftoppm", "-r", str(dpi), "-gray", "-png", str(source.resolve()), f"{scratch}/page"], check=True)
        pages = [scan_page(Image.open(path), rng) for path in sorted(Path(scratch).glob("page*.png"))]
    pages[0].save(target, "PDF", save_all=True, append_images=pages[1:], resolution=float(dpi))
    return len(pages)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--dpi", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    arguments = parser.parse_args()
    print(f"{make_scan(arguments.source, arguments.target, arguments.dpi, arguments.seed)} pages -> {arguments.target}")
