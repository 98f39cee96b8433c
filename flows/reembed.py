"""Switch embedding models: re-embed every stored passage with the configured embedder and record the new model."""

from __future__ import annotations

from prefect import flow, get_run_logger

from docintel.settings import get_settings
from models.backends import embedder
from tasks.store import CHUNKS, open_store


@flow(name="reembed-documents")
def reembed_documents() -> dict:
    settings = get_settings()
    store = open_store(settings.db_uri)
    store.finish_interrupted_swap()
    model = embedder(settings)
    columns = [name for name in store.table(CHUNKS).schema.names if name != "vector"] if store.table(CHUNKS) else []
    rows = store.rows(CHUNKS, columns=columns) if columns else []
    for start in range(0, len(rows), settings.embed_batch_size):
        batch = rows[start : start + settings.embed_batch_size]
        for row, vector in zip(batch, model.embed_documents([row["text"] for row in batch]), strict=True):
            row["vector"] = vector
            row["embedding_model"] = model.model_name
    previous = store.recorded_embedding()
    store.replace_chunk_vectors(rows, model.model_name, model.dimension)
    get_run_logger().info("re-embedded %d passages: %s -> %s", len(rows), previous, model.model_name)
    return {"chunks": len(rows), "previous": previous, "model": model.model_name, "dimension": model.dimension}
