"""Nothing answers a stranger: a real Prefect server started with authentication refuses requests without the
credentials and accepts them with it (the vLLM side of this is in tests/vllm)."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request

import pytest

from prefect_server import VENV_BIN, PrefectStack

AUTH = "operator:test-only-not-a-real-secret"


def _post(url: str, auth: str | None) -> int:
    request = urllib.request.Request(url, data=json.dumps({}).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except urllib.error.URLError:
        return 0  # not listening yet


@pytest.mark.prefect_server
def test_prefect_server_with_auth_refuses_strangers_and_accepts_its_clients(tmp_path):
    with PrefectStack(tmp_path, {"PREFECT_SERVER_API_AUTH_STRING": AUTH}) as stack:
        server = stack.spawn(
            "server", [str(VENV_BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(stack.port)]
        )
        url = f"{stack.api_url}/flows/filter"
        deadline = time.monotonic() + 120
        while _post(url, AUTH) != 200:
            assert server.process.poll() is None, server.tail()
            assert time.monotonic() < deadline, server.tail()
            time.sleep(0.5)

        assert _post(url, None) == 401
        assert _post(url, "operator:wrong") == 401
        # The CLI, as workers and operators use it, authenticates with PREFECT_API_AUTH_STRING.
        client = {"PREFECT_API_AUTH_STRING": AUTH}
        stack.run([str(VENV_BIN / "prefect"), "work-pool", "create", "spark-1-gpu0", "--type", "process"], client)
        assert "spark-1-gpu0" in stack.run([str(VENV_BIN / "prefect"), "work-pool", "inspect", "spark-1-gpu0"], client)
        with pytest.raises(RuntimeError):
            stack.run([str(VENV_BIN / "prefect"), "work-pool", "ls"], {"PREFECT_API_AUTH_STRING": "operator:wrong"}, timeout=60)
