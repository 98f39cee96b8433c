"""Global concurrency limits per model server and node (`vllm-<service>-<node>`, created by `make deploy`), so many
flow runs on a node never overload its servers. Embedded backends take no slot, nor does code outside a flow run."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

from prefect.concurrency.sync import concurrency
from prefect.context import FlowRunContext, TaskRunContext

from docintel.settings import Settings


def model_server_slot(service: str, settings: Settings) -> AbstractContextManager:
    """Hold one slot of the service's limit ("ocr", "embed" or "llm") while a request is in flight.
    A limit that does not exist (a machine never deployed to) does not block: Prefect's non-strict mode."""
    backend = {"ocr": settings.ocr_backend, "embed": settings.embed_backend, "llm": settings.llm_backend}[service]
    if backend != "vllm" or (FlowRunContext.get() is None and TaskRunContext.get() is None):
        return nullcontext()
    return concurrency(f"vllm-{service}-{settings.node_name}", occupy=1, strict=False)
