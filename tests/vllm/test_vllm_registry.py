"""The model-server registry, tiny-model builder, metrics parsing and deployment files: no server needed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from docintel.settings import Settings
from models import launcher
from models import services as reg
from models.tiny import build as tiny

REPO = Path(__file__).resolve().parents[2]
KEY = "sk-registry-test-0123456789"


def _flags(argv: list[str]) -> dict[str, str | None]:
    out, i = {}, 0
    while i < len(argv):
        if argv[i].startswith("--"):
            value = argv[i + 1] if i + 1 < len(argv) and not argv[i + 1].startswith("--") else None
            out[argv[i]] = value
            i += 2 if value is not None else 1
        else:
            i += 1
    return out


def test_production_services_and_arguments():
    svcs = {s.name: s for s in reg.services_for("production", "spark-1", Settings(vllm_api_key=None))}
    assert set(svcs) == {"embeddings", "ocr", "reasoning"}
    assert {n: s.port for n, s in svcs.items()} == {"embeddings": 8001, "ocr": 8003, "reasoning": 8004}
    assert {n: s.gpu_memory_utilization for n, s in svcs.items()} == {"embeddings": 0.10, "ocr": 0.40,
                                                                       "reasoning": 0.45}
    emb, ocr, llm = (_flags(reg.argv(svcs[n])) for n in ("embeddings", "ocr", "reasoning"))
    assert emb["--runner"] == "pooling"
    assert "--no-enable-prefix-caching" in ocr and ocr["--mm-processor-cache-gb"] == "0"
    assert reg.argv(svcs["ocr"])[2] == "tencent/HunyuanOCR"
    assert llm["--reasoning-parser"] == "openai_gptoss" and reg.argv(svcs["reasoning"])[2] == "openai/gpt-oss-20b"
    assert all(dict(s.env)["CUDA_VISIBLE_DEVICES"] == "0" for s in svcs.values())
    assert all(s.ready_url.endswith("/v1/models") for s in svcs.values())
    assert all("--enforce-eager" not in reg.argv(s) for s in svcs.values())
    eager = reg.services_for("eager", "spark-2", Settings(vllm_api_key=None))
    assert all(reg.argv(s).count("--enforce-eager") == 1 for s in eager)


def test_cpu_tiny_profile():
    svcs = {s.name: s for s in reg.services_for("cpu-tiny", settings=Settings(vllm_api_key=None))}
    assert set(svcs) == {"embeddings", "reasoning"}  # vision cannot run on the CPU build
    for s in svcs.values():
        env = dict(s.env)
        assert env["VLLM_CPU_KVCACHE_SPACE"] == "1" and env["HF_HUB_OFFLINE"] == "1"
        assert env["TMPDIR"].startswith(str(reg.scratch_dir())) and env["VLLM_CACHE_ROOT"].startswith(
            str(reg.scratch_dir()))
        assert "CUDA_VISIBLE_DEVICES" not in env
        f = _flags(reg.argv(s))
        assert f["--max-model-len"] == "512" and f["--load-format"] == "dummy" and s.host == "127.0.0.1"
        assert "--gpu-memory-utilization" not in f
    assert _flags(reg.argv(svcs["embeddings"]))["--runner"] == "pooling"
    # the settings' model names are served as aliases, so the pipeline's clients need no other configuration
    assert Settings().vllm_llm_model in svcs["reasoning"].served_model_names
    with pytest.raises(reg.RegistryError, match="vision"):
        reg.services_for("cpu-tiny", only=("ocr",))
    with pytest.raises(reg.RegistryError, match="unknown profile"):
        reg.services_for("gpu-huge")


def test_api_key_only_in_the_environment_and_masked():
    s = Settings(vllm_api_key=KEY)
    for svc in reg.services_for("production", "spark-1", s):
        assert KEY not in " ".join(reg.argv(svc))
        assert reg.server_env(svc, s, base={})["VLLM_API_KEY"] == KEY
        line = reg.describe(svc, s)
        assert KEY not in line and "VLLM_API_KEY=****" in line
    plans = launcher.up("production", "spark-1", dry_run=True, settings=s)
    assert len(plans) == 3 and all(KEY not in p.command for p in plans)
    assert "VLLM_API_KEY" not in reg.server_env(reg.services_for("cpu-tiny", settings=Settings(vllm_api_key=None))[0],
                                                Settings(vllm_api_key=None), base={"VLLM_API_KEY": "stale"})


def test_production_refuses_unpinned_revisions(monkeypatch, tmp_path):
    for name in reg.SERVICE_NAMES:
        monkeypatch.delenv(f"DOCINTEL_VLLM_{name.upper()}_REVISION", raising=False)
    monkeypatch.delenv("DOCINTEL_VLLM_ALLOW_UNPINNED", raising=False)
    if all(reg.PINNED_REVISIONS.values()):
        pytest.skip("all revisions are pinned in the registry")
    with pytest.raises(launcher.LauncherError, match="no pinned model revision"):
        launcher.up("production", "spark-1", state=tmp_path, settings=Settings(vllm_api_key=None))
    assert not list(tmp_path.iterdir())  # nothing was started
    monkeypatch.setenv("DOCINTEL_VLLM_OCR_REVISION", "0123abcd")
    (ocr,) = reg.services_for("production", "spark-1", only=("ocr",))
    assert _flags(reg.argv(ocr))["--revision"] == "0123abcd"


def test_compose_file_matches_the_registry(monkeypatch):
    compose = yaml.safe_load((REPO / "deployments" / "compose" / "vllm.yml").read_text())
    for name in reg.SERVICE_NAMES:
        monkeypatch.setenv(f"DOCINTEL_VLLM_{name.upper()}_REVISION",
                           f"${{DOCINTEL_VLLM_{name.upper()}_REVISION:?pin the {name} model revision}}")
    for svc in reg.services_for("production", "spark-1", Settings(vllm_api_key=None)):
        service = compose["services"][svc.name]
        assert [str(x) for x in service["command"]] == reg.argv(svc)[2:], svc.name
        assert service["ports"] == [f"{svc.port}:{svc.port}"]


def test_systemd_units_exec_the_registry():
    for name in reg.SERVICE_NAMES:
        unit = (REPO / "deployments" / "systemd" / f"vllm-{name}.service").read_text()
        assert f"ExecStart=/opt/docintel/.venv/bin/python -m models.launcher exec {name}\n" in unit
        assert "EnvironmentFile=/etc/docintel/vllm.env" in unit and "Restart=on-failure" in unit


def test_parse_metrics():
    text = """# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 2.0
vllm:num_requests_running{engine="1",model_name="m"} 1.0
vllm:num_requests_waiting{engine="0",model_name="m"} 3.0
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.25
http_requests_total{handler="/v1/embeddings",method="POST",status="2xx"} 7.0
http_requests_total{handler="/v1/embeddings",method="POST",status="4xx"} 1.0
"""
    m = launcher.parse_metrics(text)
    assert m["vllm:num_requests_running"] == 3.0 and m["vllm:num_requests_waiting"] == 3.0
    assert m["vllm:kv_cache_usage_perc"] == 0.25
    samples = launcher.metric_samples(text, "http_requests_total")
    assert ({"handler": "/v1/embeddings", "method": "POST", "status": "4xx"}, 1.0) in samples


def _tree_hash(d: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in d.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(d)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def test_tiny_models_are_deterministic_and_built_once(tmp_path):
    a = tiny.build(tmp_path / "a")
    b = tiny.build(tmp_path / "b")
    assert _tree_hash(tmp_path / "a") == _tree_hash(tmp_path / "b")
    stamp = tmp_path / "a" / tiny.STAMP
    mtime = stamp.stat().st_mtime_ns
    assert tiny.build(tmp_path / "a") == a and stamp.stat().st_mtime_ns == mtime  # second call: nothing rewritten
    import json

    enc = json.loads((a["embed"] / "config.json").read_text())
    dec = json.loads((b["chat"] / "config.json").read_text())
    assert enc["architectures"] == ["ModernBertModel"] and dec["architectures"] == ["LlamaForCausalLM"]
    for cfg in (enc, dec):
        assert cfg["hidden_size"] // cfg["num_attention_heads"] in {32, 64, 80, 96, 112, 128}
    assert "chat_template" in json.loads((b["chat"] / "tokenizer_config.json").read_text())
    assert not (a["embed"] / "model.safetensors").exists()  # config only: served with --load-format dummy
