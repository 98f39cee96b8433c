"""Open a PDF in a child process and report its pages as JSON: ``python -m tasks.pdf_probe PATH [MAX_CHARS]``.

PDF parsers run on hostile bytes; in a child process a hang is ended by a timeout and a crash ends only the
child. The password, if any, comes on standard input so it never shows in a process listing.
"""

from __future__ import annotations

import json
import sys


def probe(path: str, password: str | None, max_text_chars: int) -> dict:
    import pypdfium2

    try:
        document = pypdfium2.PdfDocument(path, password=password or None)
    except pypdfium2.PdfiumError as error:
        return {"error": str(error)}
    pages = []
    try:
        for index in range(len(document)):
            page = document[index]
            width, height = page.get_size()
            text_page = page.get_textpage()
            text = text_page.get_text_bounded().replace("\r\n", "\n").replace("\r", "\n").strip()
            text_page.close()
            page.close()
            pages.append({"width": width, "height": height, "text": text[:max_text_chars], "chars": len(text)})
    except pypdfium2.PdfiumError as error:
        return {"error": f"page {len(pages) + 1}: {error}"}
    finally:
        document.close()
    return {"pages": pages}


if __name__ == "__main__":
    password = sys.stdin.read().rstrip("\n") if not sys.stdin.isatty() else ""
    sys.stdout.write(json.dumps(probe(sys.argv[1], password, int(sys.argv[2]) if len(sys.argv) > 2 else 10**7)))
