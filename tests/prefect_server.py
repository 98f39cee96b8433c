"""A real Prefect server and process workers on loopback, for tests: started as process groups, stopped by PID.

    with PrefectStack(tmp_path) as stack:
        stack.start_server()
        stack.run(["prefect", "work-pool", "ls"])
        worker = stack.start_worker("spark-1-gpu0", {"DOCINTEL_NODE_NAME": "spark-1"})
        stack.crash(worker)          # SIGKILL the worker and every flow-run process it started (a node dying)

Every process gets its own session (``start_new_session``), so a signal reaches its whole group and a worker obeys the
first SIGTERM. Flow-run processes start their own sessions too; ``crash`` and ``stop`` find them as descendants
(through /proc) before killing. ``stop`` (and leaving the ``with`` block, also on failure) ends everything it started,
by PID, and nothing else.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


from models.launcher import free_port  # noqa: E402


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def descendants(pid: int) -> list[int]:
    children, found, todo = _children_map(), [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _signal_group_and_descendants(pid: int, sig: int) -> None:
    own_group = os.getpgrp()
    pids = [pid, *descendants(pid)]
    groups = set()
    for each in pids:
        with contextlib.suppress(ProcessLookupError):
            groups.add(os.getpgid(each))
    for group in groups - {own_group}:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, sig)
    for each in pids:  # anything that shares our own group is signalled alone
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.getpgid(each) == own_group:
                os.kill(each, sig)


@dataclass
class Managed:
    name: str
    process: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class PrefectStack:
    def __init__(self, workdir: Path, base_env: dict[str, str] | None = None):
        self.workdir = Path(workdir)
        self.home = self.workdir / "prefect-home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.logs = self.workdir / "logs"
        self.logs.mkdir(exist_ok=True)
        self.port = free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.processes: list[Managed] = []
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update({
            "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
            "PREFECT_HOME": str(self.home),
            "PREFECT_API_URL": self.api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "PREFECT_WORKER_QUERY_SECONDS": "2",
            "PREFECT_WORKER_PREFETCH_SECONDS": "5",
            "PREFECT_WORKER_HEARTBEAT_SECONDS": "3",
            "PREFECT_LOGGING_LEVEL": "INFO",
        })  # fmt: skip
        env.update(base_env or {})
        self.env = env

    # ---- processes ----------------------------------------------------------------------------------------------
    def spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Managed:
        log = self.logs / f"{name}-{len(self.processes)}.log"
        handle = log.open("wb")
        process = subprocess.Popen(
            args,
            cwd=REPO,
            env={**self.env, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        handle.close()
        managed = Managed(name, process, log)
        self.processes.append(managed)
        return managed

    def run(self, args: list[str], env: dict[str, str] | None = None, timeout: float = 300) -> str:
        """Run a command to completion against the server; raises with its output when it fails."""
        completed = subprocess.run(
            args, cwd=REPO, env={**self.env, **(env or {})}, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=timeout, start_new_session=True,
        )  # fmt: skip
        if completed.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} exited {completed.returncode}:\n{completed.stdout}\n{completed.stderr}")
        return completed.stdout + completed.stderr

    def start_server(self, timeout: float = 90) -> Managed:
        server = self.spawn(
            "server", [str(VENV_BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(self.port)]
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(f"prefect server exited {server.process.returncode}:\n{server.tail()}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as response:
                    if response.status == 200:
                        return server
            time.sleep(0.25)
        raise RuntimeError(f"prefect server not healthy after {timeout} s:\n{server.tail()}")

    def start_worker(self, pool: str, env: dict[str, str] | None = None) -> Managed:
        return self.spawn(
            f"worker-{pool}", [str(VENV_BIN / "prefect"), "worker", "start", "--pool", pool, "--type", "process"], env
        )

    def crash(self, managed: Managed) -> None:
        """A node dying: SIGKILL the process, its group and every descendant (flow-run processes included)."""
        _signal_group_and_descendants(managed.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            managed.process.wait(timeout=10)

    def stop(self, managed: Managed, grace: float = 10) -> None:
        if managed.process.poll() is None:
            below = descendants(managed.pid)
            _signal_group_and_descendants(managed.pid, signal.SIGTERM)
            try:
                managed.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
            for pid in [managed.pid, *below]:  # whatever ignored SIGTERM (or is still shutting down)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    group = os.getpgid(pid)
                    if group != os.getpgrp():
                        os.killpg(group, signal.SIGKILL)
                    else:
                        os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                managed.process.wait(timeout=5)

    def stop_all(self) -> None:
        for managed in reversed(self.processes):  # workers (and their flow runs) first, the server last
            with contextlib.suppress(Exception):
                self.stop(managed)

    def logs_tail(self, lines: int = 30) -> str:
        return "\n\n".join(f"==== {m.name} (pid {m.pid}, {m.log.name})\n{m.tail(lines)}" for m in self.processes)

    def __enter__(self) -> PrefectStack:
        return self

    def __exit__(self, *exc) -> None:
        self.stop_all()
