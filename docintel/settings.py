"""One typed settings object for the whole pipeline (environment prefix ``DOCINTEL_``).

Defaults run offline on one CPU machine: Tesseract OCR, a packaged MiniLM embedder, extractive answers.
"""

from __future__ import annotations

import os
import socket
from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DOCINTEL_", env_file=None, extra="ignore")

    # Storage
    db_uri: str = Field("data/lancedb", description="LanceDB URI: a folder or an object-store URI.")
    node_name: str = Field(default_factory=socket.gethostname, description="Tags rows and runs with the node that wrote them.")

    # Pages
    dpi: int = Field(200, ge=50, le=600, description="Render resolution for OCR pages.")
    text_layer_min_chars: int = Field(200, description="A page's text layer is used only with at least this many characters.")
    text_layer_min_word_ratio: float = Field(0.6, description="...and at least this share of its tokens word-like.")
    ghostscript_timeout_seconds: float = Field(120.0, description="Hard limit for one Ghostscript child process.")
    render_timeout_seconds: float = Field(60.0, description="Hard limit for rendering one page with pdf2image.")
    poppler_path: str | None = Field(None, description="Folder holding pdftoppm/pdfinfo when not on PATH.")

    # Limits against hostile input (PDF bombs, hangs): a file past one fails with the limit named.
    document_timeout_seconds: float = Field(60.0, description="Hard limit for opening a file and reading its pages.")
    max_file_mb: float = Field(512.0, description="Largest accepted file, in MB.")
    max_pages: int = Field(5000, description="Most pages accepted in one document.")
    max_page_megapixels: float = Field(80.0, description="Largest page to render, in megapixels at the render DPI.")
    max_page_text_chars: int = Field(200_000, description="Most text characters accepted on one page.")
    pdf_passwords: dict[str, SecretStr] = Field(
        default_factory=dict, description="Passwords for encrypted PDFs, keyed by file name or SHA-256 (JSON)."
    )
    pdf_passwords_secret_block: str = Field("", description="Prefect Secret block holding more passwords (JSON).")

    # Backends per stage
    ocr_backend: Literal["tesseract", "vllm"] = "tesseract"
    embed_backend: Literal["local", "vllm"] = "local"
    llm_backend: Literal["extractive", "vllm"] = "extractive"

    # OCR
    ocr_workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, description="Pages OCR'd in parallel.")
    tesseract_lang: str = "eng"
    ocr_timeout_seconds: float = Field(120.0, description="Hard limit for OCR of one page.")

    # Chunking
    chunk_target_chars: int = Field(900, ge=100, description="Target passage size in characters.")
    chunk_overlap_chars: int = Field(150, ge=0, description="Characters carried over between neighbouring passages.")
    chunk_structure: bool = Field(
        True, description="Cut at headings, sections, numbered clauses and footnotes before sentence windows."
    )

    # Embeddings
    embed_model: str = Field("all-MiniLM-L6-v2", description="Embedding model name recorded with every vector.")
    # 32 x 4: the best direct-client setting measured by benchmarks/vllm.py (README, "Production model services")
    embed_batch_size: int = Field(32, ge=1, description="Passages per embedding request, formed across documents.")
    embed_in_flight: int = Field(
        4, ge=1, description="Embedding requests in flight to the vLLM server (the embedded model runs one batch at a time)."
    )
    embed_threads: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, description="torch threads for batches.")

    # Search and answers
    search_k: int = Field(8, ge=1)
    search_fusion: Literal["rrf", "weighted", "vector", "bm25"] = Field(
        "rrf", description="How vector and full-text candidates combine (benchmarks/retrieval.py compares them)."
    )
    search_vector_weight: float = Field(0.5, ge=0, le=1, description="Vector share of the weighted fusion.")
    search_rerank: Literal["none", "lexical"] = Field("lexical", description="Second stage over the fused candidates.")
    search_candidates: int = Field(100, ge=1, description="Candidates per retriever before fusion and reranking.")
    search_query_parsing: bool = Field(
        True, description="Named documents scope the search, citations filter it, quoted phrases must match."
    )
    answer_max_sentences: int = Field(4, ge=1)
    answer_min_similarity: float = Field(
        0.25,
        description="Nothing is relevant below this best passage/question cosine similarity (MiniLM; on the retrieval "
        "dev set its 36 legal questions scored 0.30-0.71, ten off-topic questions 0.12-0.20).",
    )
    answer_min_overlap: float = Field(
        0.6, description="...unless one passage holds this share of the question's content words (3 or more words)."
    )
    answer_support_overlap: float = Field(
        0.5, description="An answer sentence is supported by a passage holding this share of its content words..."
    )
    answer_support_similarity: float = Field(
        0.6, description="...or half that share and at least this embedding similarity to the sentence."
    )

    # Model servers (production; see models/services.py)
    vllm_ocr_url: str = "http://127.0.0.1:8003/v1"
    vllm_embed_url: str = "http://127.0.0.1:8001/v1"
    vllm_llm_url: str = "http://127.0.0.1:8004/v1"
    vllm_ocr_model: str = "tencent/HunyuanOCR"
    vllm_embed_model: str = "Alibaba-NLP/gte-modernbert-base"  # ModernBERT trained for embeddings; no prefixes
    vllm_llm_model: str = "openai/gpt-oss-20b"
    vllm_api_key: SecretStr | None = Field(None, description="Bearer key for the model servers; never logged.")
    vllm_timeout_seconds: float = 120.0
    vllm_max_retries: int = 4
    reasoning_effort: Literal["low", "medium", "high"] = "medium"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
