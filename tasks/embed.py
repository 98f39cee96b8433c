"""Stage 6: embed passages in batches with the configured backend."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from docintel.records import Chunk
from docintel.settings import get_settings
from models.backends import embedder


@task(name="embed-batch", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10], retry_jitter_factor=0.5)
def embed_batch(chunks: list[Chunk]) -> list[Chunk]:
    """Fill in the vector of every chunk in one request (or one forward pass) to the embedder."""
    vectors = embedder(get_settings()).embed_documents([chunk.text for chunk in chunks])
    for chunk, vector in zip(chunks, vectors, strict=True):
        chunk.vector = vector
    return chunks
