"""Pick the backend of each stage from settings. One place decides, so the pipeline never branches on backends."""

from __future__ import annotations

from functools import lru_cache

from docintel.settings import Settings, get_settings
from models.base import Embedder, OcrBackend, Reasoner


def ocr_backend(settings: Settings | None = None) -> OcrBackend:
    settings = settings or get_settings()
    if settings.ocr_backend == "vllm":
        from models.vllm_clients import VllmOcr

        return VllmOcr.from_settings(settings)
    from models.tesseract import TesseractOcr

    return TesseractOcr(lang=settings.tesseract_lang, timeout_seconds=settings.ocr_timeout_seconds)


@lru_cache(maxsize=4)
def _cached_embedder(backend: str, batch_threads: int, server: tuple[str, str, str]) -> Embedder:
    if backend == "vllm":
        from models.vllm_clients import VllmEmbedder

        return VllmEmbedder.from_settings(get_settings())
    from models.local_embedder import LocalEmbedder

    return LocalEmbedder(batch_threads=batch_threads)


def embedder(settings: Settings | None = None) -> Embedder:
    """Loading a model costs seconds: one instance per process and configuration (server URL, model and key)."""
    settings = settings or get_settings()
    key = settings.vllm_api_key.get_secret_value() if settings.vllm_api_key else ""
    server = (settings.vllm_embed_url, settings.vllm_embed_model, key)
    return _cached_embedder(settings.embed_backend, settings.embed_threads, server)


def reasoner(settings: Settings | None = None) -> Reasoner:
    settings = settings or get_settings()
    if settings.llm_backend == "vllm":
        from models.vllm_clients import VllmReasoner

        return VllmReasoner.from_settings(settings)
    from models.extractive import ExtractiveReasoner

    return ExtractiveReasoner(max_sentences=settings.answer_max_sentences)
