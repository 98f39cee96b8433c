"""Global concurrency limits per model server and node (`vllm-<service>-<node>`, created by `make deploy`), so many
flow runs on a node never overload its servers. Embedded backends take no slot, nor does code outside a flow run."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from functools import lru_cache

from prefect.client.orchestration import get_client
from prefect.concurrency.sync import concurrency
from prefect.context import FlowRunContext, TaskRunContext
from prefect.exceptions import ObjectNotFound

from docintel.settings import Settings


@lru_cache(maxsize=16)
def limit_exists(name: str) -> bool:
    """Asked once per process: acquiring a limit that does not exist costs about 2 s per request before Prefect
    gives up on it (measured), so a machine never deployed to skips the slot altogether."""
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            return False
    return True


def model_server_slot(service: str, settings: Settings) -> AbstractContextManager:
    """Hold one slot of the service's limit ("ocr", "embed" or "llm") while a request is in flight."""
    backend = {"ocr": settings.ocr_backend, "embed": settings.embed_backend, "llm": settings.llm_backend}[service]
    if backend != "vllm" or (FlowRunContext.get() is None and TaskRunContext.get() is None):
        return nullcontext()
    name = f"vllm-{service}-{settings.node_name}"
    return concurrency(name, occupy=1, strict=False) if limit_exists(name) else nullcontext()
