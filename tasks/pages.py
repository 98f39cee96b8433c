"""Stage 2: pages. Open the file safely, keep a good text layer, otherwise render the page for OCR.

PDF parsing runs in a child process with a timeout (tasks/pdf_probe.py). Rendering uses pdf2image (poppler);
when that fails, Ghostscript in a child process with a hard timeout, -dSAFER, and only on input that starts with
%PDF- (Ghostscript executes anything else as PostScript). No shell is ever involved.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pdf2image
from PIL import Image

from docintel.records import PageMethod
from docintel.settings import Settings

# Decompression bombs are bounded by max_page_megapixels before rendering; PIL's own guard would refuse big scans.
Image.MAX_IMAGE_PIXELS = None


class DocumentError(Exception):
    """A document that cannot be read; the message is the reason a person reads."""


class RenderError(Exception):
    """A page that no renderer could turn into an image."""


@dataclass
class PageInfo:
    width_points: float
    height_points: float
    text: str

    def megapixels(self, dpi: int) -> float:
        return (self.width_points / 72 * dpi) * (self.height_points / 72 * dpi) / 1e6


@dataclass
class PdfProbe:
    pages: list[PageInfo]
    damage: str  # what the parser had to repair, "" for a sound file


_TOKEN = re.compile(r"\S+")
_WORDLIKE = re.compile(r"^[(\"'“‘\[]*[A-Za-z][a-z]*(?:[-'’][A-Za-z]+)*[.,;:!?)\"'”’\]]*$|^[(\[]?\d[\d,.:%-]*[)\].,;:]?$|^§+$")
_PDF_HEADER = b"%PDF-"


def check_file(path: Path, settings: Settings, kind: str = "pdf") -> None:
    """Reasons to refuse a file before any parser sees it."""
    size = path.stat().st_size
    if size == 0:
        raise DocumentError("empty file (0 bytes)")
    if size > settings.max_file_mb * 1e6:
        raise DocumentError(
            f"file too large: {size / 1e6:.1f} MB exceeds the limit of {settings.max_file_mb:g} MB (DOCINTEL_MAX_FILE_MB)"
        )
    if kind != "pdf":
        return
    with path.open("rb") as handle:
        head = handle.read(1024)
    if _PDF_HEADER not in head:
        raise DocumentError(f"not a PDF: no %PDF- header in the first 1024 bytes ({size} bytes in all)")


def _reason_from_parser(message: str, password: str | None) -> str:
    lowered = message.lower()
    if "password" in lowered:
        return "encrypted: the configured password is wrong" if password else "encrypted: no password configured"
    if "data format" in lowered or "format error" in lowered:
        return "damaged PDF: the structure cannot be parsed (no readable cross-reference table or trailer)"
    if "security" in lowered or "handler" in lowered:
        return "encrypted with an unsupported security handler"
    return f"damaged PDF: {message}"


def damage_report(path: Path, timeout_seconds: float) -> str:
    """Poppler's complaints while reading the file; empty for a sound PDF."""
    try:
        completed = subprocess.run(
            ["pdfinfo", str(path.resolve())], capture_output=True, timeout=timeout_seconds, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        return "pdfinfo timed out"
    errors = [line for line in completed.stderr.decode("utf-8", "replace").splitlines() if "Error" in line]
    return f"repaired: {errors[0].split(':', 1)[-1].strip()}" if errors else ""


def probe_pdf(path: Path, settings: Settings, password: str | None = None) -> PdfProbe:
    """Page count, sizes and text layer of a PDF, read in a child process bounded by the document timeout."""
    check_file(path, settings)
    command = [sys.executable, "-m", "tasks.pdf_probe", str(path.resolve()), str(settings.max_page_text_chars + 1)]
    try:
        completed = subprocess.run(
            command,
            input=(password or "").encode(),
            capture_output=True,
            timeout=settings.document_timeout_seconds,
            cwd=Path(__file__).resolve().parents[1],
        )
    except subprocess.TimeoutExpired:
        raise DocumentError(
            f"timed out after {settings.document_timeout_seconds:g} s reading the PDF "
            "(limit DOCINTEL_DOCUMENT_TIMEOUT_SECONDS)"
        ) from None
    if completed.returncode != 0:
        detail = completed.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"exit status {completed.returncode}"]
        raise DocumentError(f"damaged PDF: the parser stopped on this file ({detail[0][:160]})")
    result = json.loads(completed.stdout)
    if "error" in result:
        raise DocumentError(_reason_from_parser(result["error"], password))
    pages = [PageInfo(page["width"], page["height"], page["text"]) for page in result["pages"]]
    if not pages:
        raise DocumentError("the PDF has no pages")
    if len(pages) > settings.max_pages:
        raise DocumentError(f"too many pages: {len(pages)} exceeds the limit of {settings.max_pages} (DOCINTEL_MAX_PAGES)")
    for number, page in enumerate(pages, 1):
        if len(page.text) > settings.max_page_text_chars:
            raise DocumentError(
                f"page {number} holds more than {settings.max_page_text_chars} characters of text "
                "(limit DOCINTEL_MAX_PAGE_TEXT_CHARS)"
            )
    return PdfProbe(pages, damage_report(path, settings.document_timeout_seconds))


def text_layer_is_good(text: str, settings: Settings) -> bool:
    """Enough characters, and mostly real words (a scan's invisible OCR layer or a header stamp is not enough)."""
    if len(text) < settings.text_layer_min_chars:
        return False
    tokens = _TOKEN.findall(text)
    wordlike = sum(1 for token in tokens if _WORDLIKE.match(token))
    return wordlike / max(len(tokens), 1) >= settings.text_layer_min_word_ratio


def check_render_size(page: PageInfo, page_number: int, settings: Settings) -> None:
    megapixels = page.megapixels(settings.dpi)
    if megapixels > settings.max_page_megapixels:
        raise DocumentError(
            f"page {page_number} is too large to render: {megapixels:.0f} megapixels at {settings.dpi} dpi exceeds "
            f"the limit of {settings.max_page_megapixels:g} (DOCINTEL_MAX_PAGE_MEGAPIXELS)"
        )


def render_with_pdf2image(path: Path, page_number: int, settings: Settings, password: str | None) -> Image.Image:
    images = pdf2image.convert_from_path(
        str(path.resolve()),
        dpi=settings.dpi,
        first_page=page_number,
        last_page=page_number,
        timeout=settings.render_timeout_seconds,
        poppler_path=settings.poppler_path,
        userpw=password,
    )
    if len(images) != 1:
        raise RenderError(f"pdftoppm returned {len(images)} images for page {page_number}")
    return images[0]


def render_with_ghostscript(path: Path, page_number: int, settings: Settings, password: str | None) -> Image.Image:
    with path.open("rb") as handle:
        if not handle.read(len(_PDF_HEADER)) == _PDF_HEADER:
            raise RenderError("Ghostscript is only run on files that start with %PDF-")
    with tempfile.TemporaryDirectory(prefix="docintel-gs-") as scratch:
        output = Path(scratch) / "page-%d.png"
        command = [
            "gs", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-dQUIET", "-sDEVICE=png16m", f"-r{settings.dpi}",
            f"-dFirstPage={page_number}", f"-dLastPage={page_number}", f"-sOutputFile={output}",
        ] + ([f"-sPDFPassword={password}"] if password else []) + ["-f", str(path.resolve())]  # fmt: skip
        try:
            completed = subprocess.run(
                command, capture_output=True, timeout=settings.ghostscript_timeout_seconds, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired:
            raise RenderError(f"Ghostscript timed out after {settings.ghostscript_timeout_seconds:g} s") from None
        produced = sorted(Path(scratch).glob("page-*.png"))
        # Ghostscript "repairs" damaged files and may emit nothing, or extra pages: exactly one page is right.
        if completed.returncode != 0 or len(produced) != 1:
            detail = completed.stderr.decode("utf-8", errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise RenderError(f"Ghostscript produced {len(produced)} pages for page {page_number}: {detail[0][:200]}")
        with Image.open(produced[0]) as image:
            return image.copy()


def render_page(path: Path, page_number: int, settings: Settings, password: str | None = None) -> tuple[Image.Image, PageMethod]:
    """Render one page for OCR with pdf2image, falling back to Ghostscript; returns the image and the path taken."""
    try:
        return render_with_pdf2image(path, page_number, settings, password), PageMethod.PDF2IMAGE_OCR
    except Exception as error:  # pdf2image raises several unrelated types; all mean "try Ghostscript"
        pdf2image_error = f"pdf2image failed ({type(error).__name__}: {str(error)[:160]})"
    try:
        return render_with_ghostscript(path, page_number, settings, password), PageMethod.GHOSTSCRIPT_OCR
    except RenderError as error:
        raise RenderError(f"{pdf2image_error}; {error}") from None
