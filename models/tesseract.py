"""Embedded OCR default: Tesseract through pytesseract, one tesseract thread per page."""

from __future__ import annotations

import os

import pytesseract
from PIL.Image import Image

from docintel.records import Word
from models.base import OcrResult

# Pages run in parallel processes; a threaded tesseract on 2 cores is slower (STACK-NOTES).
os.environ.setdefault("OMP_THREAD_LIMIT", "1")


class TesseractOcr:
    name = "tesseract"

    def __init__(self, lang: str = "eng", timeout_seconds: float = 120.0):
        self.lang = lang
        self.timeout_seconds = timeout_seconds

    def recognize(self, image: Image, dpi: int) -> OcrResult:
        data = pytesseract.image_to_data(
            image,
            lang=self.lang,
            config=f"--dpi {dpi}",
            output_type=pytesseract.Output.DICT,
            timeout=self.timeout_seconds,
        )
        return text_and_words_from_tesseract_data(data, points_per_pixel=72.0 / dpi)


def text_and_words_from_tesseract_data(data: dict, points_per_pixel: float) -> OcrResult:
    """Rebuild reading-order text from tesseract's word table: words by line, a blank line between blocks."""
    words: list[Word] = []
    lines: list[str] = []
    current_key = None
    current_block = None
    current_line: list[str] = []
    for i, token in enumerate(data["text"]):
        token = token.strip()
        if not token:
            continue
        key = (data["block_num"][i], data["par_num"][i], data["line_num"][i])
        if key != current_key:
            if current_line:
                lines.append(" ".join(current_line))
            if current_block is not None and key[0] != current_block:
                lines.append("")
            current_key, current_block, current_line = key, key[0], []
        current_line.append(token)
        words.append(
            Word(
                text=token,
                left=round(data["left"][i] * points_per_pixel, 2),
                top=round(data["top"][i] * points_per_pixel, 2),
                width=round(data["width"][i] * points_per_pixel, 2),
                height=round(data["height"][i] * points_per_pixel, 2),
                confidence=float(data["conf"][i]),
            )
        )
    if current_line:
        lines.append(" ".join(current_line))
    return OcrResult(text="\n".join(lines).strip(), words=words)
