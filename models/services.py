"""The model-server registry: which vLLM servers exist, where they run and the exact command line of each.

Three services, each one ``vllm serve`` process with an OpenAI-compatible API:

=========== ==== ======================== ==========================================================
name        port model                    notes
=========== ==== ======================== ==========================================================
embeddings  8001 settings.vllm_embed_model ModernBERT embeddings, ``--runner pooling``
ocr         8003 settings.vllm_ocr_model   HunyuanOCR (vision); no prefix caching, no mm cache
reasoning   8004 settings.vllm_llm_model   gpt-oss-20b, chain of thought via ``--reasoning-parser``
=========== ==== ======================== ==========================================================

Profiles: ``production`` (GPU nodes), ``eager`` (production plus ``--enforce-eager``: no CUDA-graph capture, faster
cold start, slower steady state) and ``cpu-tiny`` (the config-only models of ``models/tiny`` on a CPU build of vLLM,
for tests and laptops; embeddings and reasoning only, since vision models cannot run on the CPU build).

The API key, when ``settings.vllm_api_key`` is set, reaches the server only through the environment variable
``VLLM_API_KEY`` (which ``vllm serve`` reads like ``--api-key``): it never appears in an argv (visible to every user
in ``ps``), a file or any printed command line.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, replace
from pathlib import Path

from docintel.settings import Settings, get_settings

SERVICE_NAMES = ("embeddings", "ocr", "reasoning")
READY_PATH = "/v1/models"
API_KEY_ENV = "VLLM_API_KEY"
MASK = "****"

# Pinned Hugging Face revisions (commit hashes) of the production models. A model repository can change under the
# same name (HunyuanOCR's weights did in 2026), so production refuses to start an unpinned service. Fill these in
# from the model pages, or set DOCINTEL_VLLM_<SERVICE>_REVISION (e.g. DOCINTEL_VLLM_OCR_REVISION) per deployment.
PINNED_REVISIONS: dict[str, str | None] = {
    "embeddings": None,
    "ocr": None,
    "reasoning": None,
}

DEFAULT_TINY_DIR = Path.home() / ".cache" / "docintel" / "tiny-models"
DEFAULT_SCRATCH_DIR = Path.home() / ".cache" / "docintel" / "vllm-scratch"


@dataclass(frozen=True)
class Service:
    """One vLLM server: what it serves, on which port, with which arguments and environment."""

    name: str
    model: str  # Hugging Face id or a local folder
    port: int
    served_model_names: tuple[str, ...]  # the first is reported by the server; all are accepted in requests
    revision: str | None = None
    runner: str | None = None  # "pooling" for embeddings
    gpu_memory_utilization: float | None = None  # share of the GPU's memory (ignored on CPU)
    max_model_len: int | None = None
    args: tuple[str, ...] = ()  # further `vllm serve` arguments
    env: tuple[tuple[str, str], ...] = ()  # extra environment (CUDA_VISIBLE_DEVICES, CPU settings ...)
    host: str = "127.0.0.1"  # address the server binds to
    connect_host: str = "127.0.0.1"  # address clients use to reach it
    ready_path: str = READY_PATH

    @property
    def base_url(self) -> str:
        return f"http://{self.connect_host}:{self.port}"

    @property
    def api_url(self) -> str:
        """The OpenAI base URL (what the clients and settings.vllm_*_url use)."""
        return f"{self.base_url}/v1"

    @property
    def ready_url(self) -> str:
        return f"{self.base_url}{self.ready_path}"

    @property
    def metrics_url(self) -> str:
        return f"{self.base_url}/metrics"

    @property
    def request_model(self) -> str:
        """The model name clients send."""
        return self.served_model_names[0]


@dataclass(frozen=True)
class Node:
    """A machine that runs some of the services on one GPU."""

    name: str
    host: str  # how other machines reach it
    services: tuple[str, ...]
    cuda_visible_devices: str | None = None  # None: CPU only
    bind_host: str = "0.0.0.0"


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    services: tuple[str, ...]  # services this profile can run
    default_node: str
    requires_pinned_revisions: bool = True


NODES: dict[str, Node] = {
    # DGX Spark boxes, one GPU each. The shares 0.10 + 0.40 + 0.45 leave 5% of the GPU's memory free.
    "spark-1": Node("spark-1", "spark-1", ("embeddings", "ocr", "reasoning"), cuda_visible_devices="0"),
    "spark-2": Node("spark-2", "spark-2", ("embeddings", "ocr", "reasoning"), cuda_visible_devices="0"),
    # This machine, loopback only (tests, laptops, CI).
    "local": Node("local", "127.0.0.1", ("embeddings", "reasoning"), cuda_visible_devices=None, bind_host="127.0.0.1"),
}

PROFILES: dict[str, Profile] = {
    "production": Profile("production", "GPU servers with CUDA graphs (slow cold start, fastest serving).",
                          SERVICE_NAMES, "spark-1"),
    "eager": Profile("eager", "Production models with --enforce-eager: faster cold start, slower serving.",
                     SERVICE_NAMES, "spark-1"),
    "cpu-tiny": Profile("cpu-tiny", "Tiny config-only models with random weights on the CPU build of vLLM "
                        "(embeddings + reasoning; vision cannot run on CPU).",
                        ("embeddings", "reasoning"), "local", requires_pinned_revisions=False),
}

TINY_NAMES = {"embeddings": "docintel-tiny-embed", "reasoning": "docintel-tiny-chat"}
TINY_DIRS = {"embeddings": "embed", "reasoning": "chat"}  # folders written by models.tiny.build


class RegistryError(ValueError):
    pass


def _revision(name: str) -> str | None:
    return os.environ.get(f"DOCINTEL_VLLM_{name.upper()}_REVISION") or PINNED_REVISIONS.get(name)


def tiny_models_dir() -> Path:
    return Path(os.environ.get("DOCINTEL_TINY_MODELS", DEFAULT_TINY_DIR)).expanduser()


def scratch_dir() -> Path:
    return Path(os.environ.get("DOCINTEL_VLLM_SCRATCH", DEFAULT_SCRATCH_DIR)).expanduser()


def _production_service(name: str, s: Settings) -> Service:
    if name == "embeddings":
        return Service("embeddings", s.vllm_embed_model, 8001, (s.vllm_embed_model,), _revision(name),
                       runner="pooling", gpu_memory_utilization=0.10)
    if name == "ocr":
        return Service("ocr", s.vllm_ocr_model, 8003, (s.vllm_ocr_model,), _revision(name),
                       gpu_memory_utilization=0.40,
                       args=("--no-enable-prefix-caching", "--mm-processor-cache-gb", "0"))
    if name == "reasoning":
        return Service("reasoning", s.vllm_llm_model, 8004, (s.vllm_llm_model,), _revision(name),
                       gpu_memory_utilization=0.45, args=("--reasoning-parser", "openai_gptoss"))
    raise RegistryError(f"unknown service {name!r}; known: {', '.join(SERVICE_NAMES)}")


def _tiny_service(name: str, s: Settings) -> Service:
    if name not in TINY_NAMES:
        raise RegistryError(f"service {name!r} is not in profile cpu-tiny (vision models cannot run on the CPU build)")
    scratch = scratch_dir()
    env = (
        ("VLLM_CPU_KVCACHE_SPACE", "1"),  # GiB; the default memory fraction is refused on a small machine
        ("HF_HUB_OFFLINE", "1"),
        ("TRANSFORMERS_OFFLINE", "1"),
        ("VLLM_NO_USAGE_STATS", "1"),
        ("DO_NOT_TRACK", "1"),
        ("TMPDIR", str(scratch / "tmp")),
        ("VLLM_CACHE_ROOT", str(scratch / "cache")),
    )
    # The settings' model name is served as an alias, so the pipeline's clients work unchanged against the tiny models.
    alias = {"embeddings": s.vllm_embed_model, "reasoning": s.vllm_llm_model}[name]
    # Eager: no torch.compile warm-up (about 35 s on 2 cores with a cold cache); the tiny models need no speed.
    # float32: the default downcast to float16 is 2-3x slower on CPUs without native fp16 math.
    common = dict(max_model_len=512, env=env, args=("--load-format", "dummy", "--enforce-eager", "--dtype", "float32"))
    if name == "embeddings":
        return Service("embeddings", str(tiny_models_dir() / TINY_DIRS[name]), 8001, (TINY_NAMES[name], alias),
                       runner="pooling", **common)
    # deepseek_r1 splits <think>...</think> into the message's reasoning field, as openai_gptoss does for gpt-oss.
    common["args"] = common["args"] + ("--reasoning-parser", "deepseek_r1")
    return Service("reasoning", str(tiny_models_dir() / TINY_DIRS[name]), 8004, (TINY_NAMES[name], alias), **common)


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise RegistryError(f"unknown profile {name!r}; known: {', '.join(PROFILES)}") from None


def get_node(name: str) -> Node:
    try:
        return NODES[name]
    except KeyError:
        raise RegistryError(f"unknown node {name!r}; known: {', '.join(NODES)}") from None


def services_for(profile: str = "production", node: str | None = None, settings: Settings | None = None,
                 only: tuple[str, ...] | None = None) -> list[Service]:
    """The services ``profile`` runs on ``node`` (default: the profile's node), fully resolved."""
    s = settings or get_settings()
    p = get_profile(profile)
    n = get_node(node or p.default_node)
    names = [x for x in SERVICE_NAMES if x in p.services and x in n.services and (only is None or x in only)]
    if only:
        missing = set(only) - set(names)
        if missing:
            raise RegistryError(f"profile {p.name} on node {n.name} has no service {', '.join(sorted(missing))} "
                                f"({p.description})")
    out = []
    for name in names:
        svc = _tiny_service(name, s) if p.name == "cpu-tiny" else _production_service(name, s)
        env = dict(svc.env)
        if n.cuda_visible_devices is not None:
            env["CUDA_VISIBLE_DEVICES"] = n.cuda_visible_devices
        args = svc.args + (("--enforce-eager",) if p.name == "eager" and "--enforce-eager" not in svc.args else ())
        out.append(replace(svc, env=tuple(sorted(env.items())), args=args, host=n.bind_host, connect_host=n.host))
    return out


def unpinned(services: list[Service], profile: str) -> list[str]:
    """Names of services that a profile requires pinned but have no revision."""
    if not get_profile(profile).requires_pinned_revisions:
        return []
    return [s.name for s in services if not s.revision]


def argv(service: Service, vllm: str = "vllm") -> list[str]:
    """The exact command line of one server. Holds no secret: the API key travels in the environment."""
    cmd = [vllm, "serve", service.model, "--host", service.host, "--port", str(service.port),
           "--served-model-name", *service.served_model_names]
    if service.revision:
        cmd += ["--revision", service.revision]
    if service.runner:
        cmd += ["--runner", service.runner]
    if service.gpu_memory_utilization is not None and not _cpu_only(service):
        cmd += ["--gpu-memory-utilization", f"{service.gpu_memory_utilization:.2f}"]
    if service.max_model_len:
        cmd += ["--max-model-len", str(service.max_model_len)]
    cmd += list(service.args)
    return cmd


def _cpu_only(service: Service) -> bool:
    return "CUDA_VISIBLE_DEVICES" not in dict(service.env)


def server_env(service: Service, settings: Settings | None = None,
               base: dict[str, str] | None = None) -> dict[str, str]:
    """The full environment for the server process: ``base`` (default os.environ) + the service's + the API key."""
    s = settings or get_settings()
    env = dict(os.environ if base is None else base)
    env.update(dict(service.env))
    env.pop(API_KEY_ENV, None)
    if s.vllm_api_key is not None and s.vllm_api_key.get_secret_value():
        env[API_KEY_ENV] = s.vllm_api_key.get_secret_value()
    return env


def describe(service: Service, settings: Settings | None = None, vllm: str = "vllm") -> str:
    """A shell-style line for dry runs and logs: the service's own environment, the argv, the key masked."""
    s = settings or get_settings()
    env = dict(service.env)
    if s.vllm_api_key is not None and s.vllm_api_key.get_secret_value():
        env[API_KEY_ENV] = MASK
    parts = [f"{k}={shlex.quote(v) if v != MASK else v}" for k, v in sorted(env.items())]
    return " ".join(parts + [shlex.join(argv(service, vllm))])


__all__ = [
    "API_KEY_ENV", "MASK", "NODES", "PROFILES", "READY_PATH", "SERVICE_NAMES", "Node", "Profile", "RegistryError",
    "Service", "argv", "describe", "get_node", "get_profile", "server_env", "services_for", "tiny_models_dir",
    "scratch_dir", "unpinned",
]
