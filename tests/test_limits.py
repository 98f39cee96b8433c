"""Global concurrency limits for model servers: a real limit on the Prefect test server holds a slot while a
vLLM-backed request is in flight on that node, and embedded backends take none."""

from __future__ import annotations

import asyncio

from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

from tasks.limits import model_server_slot


async def _active_slots(name: str) -> int:
    async with get_client() as client:
        return (await client.read_global_concurrency_limit_by_name(name)).active_slots


def test_a_vllm_backed_request_holds_a_slot_of_its_nodes_limit(settings_env):
    settings = settings_env(embed_backend="vllm", node_name="test-node")
    name = "vllm-embed-test-node"

    async def create() -> None:
        async with get_client() as client:
            await client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))

    asyncio.run(create())

    @flow
    def request_in_flight() -> int:
        with model_server_slot("embed", settings):
            return asyncio.run(_active_slots(name))

    assert request_in_flight() == 1
    assert asyncio.run(_active_slots(name)) == 0


def test_embedded_backends_take_no_slot(settings_env):
    settings = settings_env()

    @flow
    def local_request() -> str:
        return type(model_server_slot("embed", settings)).__name__

    assert local_request() == "nullcontext"
