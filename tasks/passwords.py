"""Passwords for encrypted PDFs: from settings (DOCINTEL_PDF_PASSWORDS) or a Prefect Secret block.

Looked up by the task that needs one, never passed as a task parameter, so a password is never stored with a run.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from docintel.settings import Settings


@lru_cache(maxsize=4)
def _passwords_from_secret_block(block_name: str) -> dict[str, str]:
    from prefect.blocks.system import Secret

    value = Secret.load(block_name).get()
    return dict(json.loads(value) if isinstance(value, str) else value)


def password_for(path: str, document_id: str, settings: Settings) -> str | None:
    """The password for a file, looked up by its SHA-256, its file name, then its full path."""
    keys = (document_id, Path(path).name, path)
    for key in keys:
        if key in settings.pdf_passwords:
            return settings.pdf_passwords[key].get_secret_value()
    if settings.pdf_passwords_secret_block:
        from_block = _passwords_from_secret_block(settings.pdf_passwords_secret_block)
        for key in keys:
            if key in from_block:
                return from_block[key]
    return None
