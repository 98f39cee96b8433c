"""Stage 2: pages. Count them, keep a good text layer, otherwise render the page for OCR.

Rendering uses pdf2image (poppler); when that fails, Ghostscript in a child process with a hard timeout, -dSAFER,
and only on input that starts with %PDF- (Ghostscript executes anything else as PostScript).
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

import pdf2image
import pypdfium2
from PIL import Image

from docintel.records import PageMethod
from docintel.settings import Settings


class DocumentError(Exception):
    """A document that cannot be read; the message is the reason a person reads."""


class RenderError(Exception):
    """A page that no renderer could turn into an image."""


_TOKEN = re.compile(r"\S+")
_WORDLIKE = re.compile(r"^[(\"'“‘\[]*[A-Za-z][a-z]*(?:[-'’][A-Za-z]+)*[.,;:!?)\"'”’\]]*$|^[(\[]?\d[\d,.:%-]*[)\].,;:]?$|^§+$")


def count_pages(path: Path) -> int:
    try:
        document = pypdfium2.PdfDocument(str(path))
    except pypdfium2.PdfiumError as error:
        raise DocumentError(f"cannot open PDF: {error}") from None
    try:
        return len(document)
    finally:
        document.close()


def extract_text_layer(path: Path) -> list[str]:
    """Every page's text layer, in reading order (pdfium keeps justified lines whole, where pdftotext's raw mode
    breaks them into single words)."""
    document = pypdfium2.PdfDocument(str(path))
    try:
        pages = []
        for page in document:
            text_page = page.get_textpage()
            pages.append(text_page.get_text_bounded().replace("\r\n", "\n").replace("\r", "\n").strip())
            text_page.close()
            page.close()
        return pages
    finally:
        document.close()


def text_layer_is_good(text: str, settings: Settings) -> bool:
    """Enough characters, and mostly real words (a scan's invisible OCR layer or a header stamp is not enough)."""
    if len(text) < settings.text_layer_min_chars:
        return False
    tokens = _TOKEN.findall(text)
    wordlike = sum(1 for token in tokens if _WORDLIKE.match(token))
    return wordlike / max(len(tokens), 1) >= settings.text_layer_min_word_ratio


def render_with_pdf2image(path: Path, page_number: int, settings: Settings) -> Image.Image:
    images = pdf2image.convert_from_path(
        str(path.resolve()),
        dpi=settings.dpi,
        first_page=page_number,
        last_page=page_number,
        timeout=settings.render_timeout_seconds,
        poppler_path=settings.poppler_path,
    )
    if len(images) != 1:
        raise RenderError(f"pdftoppm returned {len(images)} images for page {page_number}")
    return images[0]


def render_with_ghostscript(path: Path, page_number: int, settings: Settings) -> Image.Image:
    with path.open("rb") as handle:
        if not handle.read(1024).lstrip().startswith(b"%PDF-"):
            raise RenderError("not a PDF: Ghostscript is only run on files that start with %PDF-")
    with tempfile.TemporaryDirectory(prefix="docintel-gs-") as scratch:
        output = Path(scratch) / "page.png"
        command = [
            "gs", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-dQUIET", "-sDEVICE=png16m", f"-r{settings.dpi}",
            f"-dFirstPage={page_number}", f"-dLastPage={page_number}", f"-sOutputFile={output}",
            str(path.resolve()),
        ]  # fmt: skip
        try:
            completed = subprocess.run(
                command, capture_output=True, timeout=settings.ghostscript_timeout_seconds, check=False, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired:
            raise RenderError(f"Ghostscript timed out after {settings.ghostscript_timeout_seconds:.0f} s") from None
        if completed.returncode != 0 or not output.exists():
            detail = completed.stderr.decode("utf-8", errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise RenderError(f"Ghostscript failed on page {page_number}: {detail[0][:200]}")
        with Image.open(output) as image:
            return image.copy()


def render_page(path: Path, page_number: int, settings: Settings) -> tuple[Image.Image, PageMethod, str]:
    """Render one page for OCR; returns the image, the path taken, and why pdf2image was passed over (if it was)."""
    try:
        return render_with_pdf2image(path, page_number, settings), PageMethod.PDF2IMAGE_OCR, ""
    except Exception as error:  # pdf2image raises several unrelated types; all mean "try Ghostscript"
        pdf2image_error = f"pdf2image failed ({type(error).__name__}: {str(error)[:160]})"
    try:
        return render_with_ghostscript(path, page_number, settings), PageMethod.GHOSTSCRIPT_OCR, pdf2image_error
    except RenderError as error:
        raise RenderError(f"{pdf2image_error}; {error}") from None
