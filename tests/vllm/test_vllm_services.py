"""The vLLM clients, launcher and registry against real vLLM servers (CPU build, tiny random-weight models).

The models are config-only (``--load-format dummy``): their outputs are noise, so these tests check the plumbing
(requests, batching, reasoning fields, errors, retries, keys, supervision), never the quality of an answer.
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageDraw

from docintel.settings import Settings, get_settings
from models import launcher
from models import services as reg
from models.base import Passage
from models.vllm_clients import ModelServerError, VllmEmbedder, VllmOcr, VllmReasoner, strip_repetition

pytestmark = pytest.mark.vllm

TEXTS = [f"Plaintiff's motion {i} cites Roe v. Wade, 410 U. S. 113 (1973), and 42 U.S.C. § 1983." for i in range(20)]
PASSAGES = [Passage(1, "fisher.pdf", 3, "The University considers race as one of various factors."),
            Passage(2, "fisher.pdf", 4, "Strict scrutiny requires a careful judicial inquiry.")]
NO_KEY = Settings(vllm_api_key=None)


def _think_end_id() -> int:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(reg.tiny_models_dir() / "chat" / "tokenizer.json")).token_to_id("</think>")


def _reasoner(chat_server, seed: int, **kw) -> VllmReasoner:
    """Sampling with a fixed seed and a bias towards ``</think>``: the random model then "thinks" for a few tokens,
    closes the thought and "answers", so the server's reasoning parser fills both message fields."""
    kw.setdefault("extra_body", {"seed": seed, "logit_bias": {str(_think_end_id()): 6}})
    return VllmReasoner(chat_server.api_url, chat_server.alias, settings=NO_KEY, max_tokens=32, temperature=1.0,
                        timeout=60, **kw)


@pytest.fixture(scope="module")
def thinking_seed(chat_server) -> int:
    """A seed for which the random model writes some thought before its first ``</think>`` (for most seeds it does;
    for some the very first token is ``</think>``, leaving no reasoning)."""
    for seed in range(20):
        r = _reasoner(chat_server, seed).answer("What standard of review applies?", PASSAGES)
        if r.reasoning and r.answer:
            return seed
    pytest.fail("no seed in 0..19 gave both reasoning and an answer: is the reasoning parser on?")


# ------------------------------------------------------------------------------------------------- embeddings

def test_embeddings_dimension_and_one_request_per_batch(embed_server):
    emb = VllmEmbedder(embed_server.api_url, embed_server.alias, api_key=embed_server.api_key, batch_size=8,
                       max_in_flight=2, timeout=60)
    before = embed_server.http_requests("/v1/embeddings")
    vectors = emb.embed_documents(TEXTS)
    after = embed_server.http_requests("/v1/embeddings")
    assert emb.dimension == 128  # hidden size of the tiny ModernBERT
    assert len(vectors) == len(TEXTS) and all(len(v) == 128 for v in vectors)
    assert all(math.isclose(sum(x * x for x in v), 1.0, rel_tol=1e-4) for v in vectors)
    # one request to learn the dimension, then ceil(20 / 8) = 3 batches
    assert after - before == 1 + 3
    # order is kept: embedding a text alone gives its vector from the batch
    single = emb.embed_query(TEXTS[5])
    assert max(abs(a - b) for a, b in zip(single, vectors[5])) < 1e-2


def test_embeddings_batching_is_faster_than_single_requests(embed_server, vllm_report):
    emb = VllmEmbedder(embed_server.api_url, embed_server.alias, api_key=embed_server.api_key, dimension=128,
                       batch_size=64, max_in_flight=1, timeout=60)
    texts = [t + " " + "word " * 40 for t in TEXTS * 3][:60]
    emb.embed_documents(texts[:4])  # warm
    t0 = time.perf_counter()
    emb.embed_documents(texts)
    batched = time.perf_counter() - t0
    t0 = time.perf_counter()
    for t in texts:
        emb.embed_query(t)
    single = time.perf_counter() - t0
    vllm_report(f"embeddings, 60 texts of ~270 chars: one request {batched:.2f} s ({60 / batched:.0f}/s), "
                f"60 single requests {single:.2f} s ({60 / single:.0f}/s)")
    assert batched < single


def test_embeddings_dimension_mismatch_is_reported(embed_server):
    emb = VllmEmbedder(embed_server.api_url, embed_server.alias, api_key=embed_server.api_key, dimension=384)
    with pytest.raises(ModelServerError, match=r"dimension \[128\], expected 384"):
        emb.embed_documents(["a", "b"])


# -------------------------------------------------------------------------------------------------- API keys

def test_api_key_required_and_never_shown(embed_server, vllm_servers):
    key = embed_server.api_key
    r = httpx.get(f"{embed_server.api_url}/models", timeout=10)
    assert r.status_code == 401
    r = httpx.get(f"{embed_server.api_url}/models", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert r.status_code == 200

    no_key = VllmEmbedder(embed_server.api_url, embed_server.alias, settings=NO_KEY, dimension=128)
    with pytest.raises(ModelServerError) as err:
        no_key.embed_query("x")
    assert err.value.status == 401 and err.value.attempts == 1  # a 4xx is not retried
    assert embed_server.api_url in str(err.value)

    wrong = "wrong-" + key[::-1]
    with pytest.raises(ModelServerError) as err:
        VllmEmbedder(embed_server.api_url, embed_server.alias, api_key=wrong, dimension=128).embed_query("x")
    assert err.value.status == 401 and wrong not in str(err.value) and key not in str(err.value)

    keyed = VllmEmbedder(embed_server.api_url, "no-such-model", api_key=key, dimension=128)
    assert key not in repr(keyed)
    with pytest.raises(ModelServerError) as err:
        keyed.embed_query("x")
    assert err.value.status == 404 and key not in str(err.value) and key not in repr(err.value)

    # the key is not on any command line, in the state files or in the logs
    pid = embed_server.server_pid()
    assert key not in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    for f in vllm_servers["state"].iterdir():
        assert key not in f.read_text(errors="replace"), f
    # ...and a dry run masks it
    plans = launcher.up("cpu-tiny", dry_run=True, settings=Settings(vllm_api_key=key))
    assert plans and all(key not in p.command and "VLLM_API_KEY=****" in p.command for p in plans)


# -------------------------------------------------------------------------------------------------- reasoning

def test_reasoner_keeps_reasoning_apart_from_answer(chat_server, thinking_seed):
    client = _reasoner(chat_server, thinking_seed)
    result = client.answer("What standard of review applies?", PASSAGES)
    # the same request by hand: vLLM 0.32 names the field `reasoning` (older servers: `reasoning_content`)
    params = client._params("What standard of review applies?", PASSAGES)
    body = {k: v for k, v in params.items() if k != "extra_body"} | params["extra_body"]
    raw = httpx.post(f"{chat_server.api_url}/chat/completions", json=body, timeout=60).json()["choices"][0]["message"]
    assert raw["reasoning"] and raw["content"]
    assert result.reasoning == raw["reasoning"].strip() and result.answer == raw["content"].strip()
    assert result.reasoning not in result.answer
    assert result.model == chat_server.model

    # At temperature 0 the random model never closes its thought: all of it is reasoning and there is no answer.
    greedy = VllmReasoner(chat_server.api_url, chat_server.alias, settings=NO_KEY, max_tokens=16, temperature=0.0,
                          reasoning_effort="low").answer("Q?", PASSAGES)
    assert greedy.reasoning and greedy.answer == ""


def test_reasoner_streams_the_answer_only(chat_server, thinking_seed):
    full = _reasoner(chat_server, thinking_seed).answer("What standard of review applies?", PASSAGES)
    pieces = list(_reasoner(chat_server, thinking_seed).stream_answer("What standard of review applies?", PASSAGES))
    assert len(pieces) > 1
    assert "".join(pieces).strip() == full.answer  # same seed, same tokens; the reasoning deltas were skipped


def test_client_error_is_not_retried(chat_server):
    before = chat_server.http_requests("/v1/chat/completions", "4xx")
    bad = VllmReasoner(chat_server.api_url, "no-such-model", settings=NO_KEY, max_retries=4, backoff_base=0.01)
    with pytest.raises(ModelServerError) as err:
        bad.answer("Q?", PASSAGES)
    assert err.value.status == 404 and err.value.attempts == 1 and not err.value.retryable
    assert "does not exist" in str(err.value)  # the server's reason
    assert chat_server.http_requests("/v1/chat/completions", "4xx") - before == 1


@pytest.fixture
def hanging_url():
    """A loopback socket that accepts connections (the kernel's backlog) and never answers: a hung server."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


def test_timeouts_are_retried_except_for_ocr_pages(hanging_url):
    slow = VllmReasoner(hanging_url, "m", settings=NO_KEY, timeout=0.2, max_retries=2, backoff_base=0.01)
    with pytest.raises(ModelServerError, match="timed out") as err:
        slow.answer("Q?", PASSAGES)
    assert err.value.attempts == 3 and err.value.retryable and hanging_url in str(err.value)
    ocr = VllmOcr(hanging_url, "m", settings=NO_KEY, page_timeout=0.2, max_retries=2)
    t0 = time.monotonic()
    with pytest.raises(ModelServerError, match="timed out") as err:
        ocr.recognize(_page(), dpi=100)
    assert err.value.attempts == 1  # a page that timed out would time out again: failed at once
    assert time.monotonic() - t0 < 2


# ------------------------------------------------------------------------------------------------------- OCR

def _page() -> Image.Image:
    img = Image.new("RGB", (850, 1100), "white")
    ImageDraw.Draw(img).text((72, 72), "Roe v. Wade, 410 U. S. 113 (1973)", fill="black")
    return img


def test_ocr_sends_a_vision_request_and_surfaces_the_servers_refusal(chat_server):
    """The CPU build cannot serve a vision model, so the OCR client talks to the text-only chat server: the request
    (system message, user content = PNG data-URL ``image_url`` part + HunyuanOCR instruction, temperature 0) reaches
    vLLM, which parses it and refuses the image with HTTP 400 "... is not a multimodal model". The client must
    surface that reason at once, without retrying."""
    before = chat_server.http_requests("/v1/chat/completions", "4xx")
    # max_tokens within the tiny server's --max-model-len 512: vLLM checks that before it looks at the image
    ocr = VllmOcr(chat_server.api_url, chat_server.alias, settings=NO_KEY, page_timeout=30, backoff_base=0.01,
                  max_tokens=64)
    msgs = ocr.messages(_page())
    assert msgs[1]["content"][0]["image_url"]["url"].startswith("data:image/png;base64,iVBOR")
    with pytest.raises(ModelServerError) as err:
        ocr.recognize(_page(), dpi=100)
    assert err.value.status == 400 and err.value.attempts == 1
    assert "not a multimodal model" in str(err.value) and chat_server.api_url in str(err.value)
    assert chat_server.http_requests("/v1/chat/completions", "4xx") - before == 1


def test_strip_repetition_on_a_real_degenerate_output(chat_server):
    # Greedy decoding of the random model falls into a loop, like a VLM that lost its place on a page.
    r = httpx.post(f"{chat_server.api_url}/chat/completions", timeout=60, json={
        "model": chat_server.alias, "messages": [{"role": "user", "content": "What is the holding?"}],
        "max_tokens": 96, "temperature": 0})
    msg = r.json()["choices"][0]["message"]
    text = (msg.get("reasoning") or "") + (msg.get("content") or "")
    cleaned = strip_repetition(text)
    assert len(cleaned) < len(text) / 2, (text, cleaned)


def test_strip_repetition_leaves_ordinary_text_alone():
    toc = "Statement of the Case " + "." * 60 + " 3\nArgument " + "." * 70 + " 7\n"
    assert strip_repetition(toc) == toc  # dot leaders are not a loop
    prose = "Id. at 5. Id. at 6. See id. " * 2
    assert strip_repetition(prose) == prose
    loop = "The court held that " + "the motion is denied. " * 30
    assert strip_repetition(loop) == "The court held that the motion is denied. "


# --------------------------------------------------------------------------------------------------- launcher

def test_status_reads_readiness_and_metrics(vllm_servers):
    statuses = {st.name: st for st in launcher.status(state=vllm_servers["state"],
                                                       settings=Settings(vllm_api_key=vllm_servers["key"]))}
    assert set(statuses) == {"embeddings", "reasoning"}
    for st in statuses.values():
        assert st.ready and st.state == "running" and st.pid and st.supervisor_pid
        assert st.running is not None and st.waiting is not None and st.kv_cache_usage is not None


def test_cli_status_json(vllm_servers, monkeypatch):
    from typer.testing import CliRunner

    from docintel.cli_models import models_app

    monkeypatch.setenv("DOCINTEL_STATE_DIR", str(vllm_servers["state"]))
    monkeypatch.setenv("DOCINTEL_VLLM_API_KEY", vllm_servers["key"])  # /v1/models of the embeddings server needs it
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(models_app, ["status", "--json"])
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    data = {d["name"]: d for d in json.loads(result.output)}
    assert data["embeddings"]["ready"] and data["reasoning"]["ready"]
    assert vllm_servers["key"] not in result.output


def test_server_that_stays_down_gives_a_clear_error(unused_port):
    url = f"http://127.0.0.1:{unused_port}/v1"
    emb = VllmEmbedder(url, "m", settings=NO_KEY, dimension=128, max_retries=2, backoff_base=0.05, timeout=5)
    t0 = time.monotonic()
    with pytest.raises(ModelServerError) as err:
        emb.embed_query("x")
    assert err.value.attempts == 3 and err.value.retryable and emb.retries == 2
    assert url in str(err.value) and "after 3 attempts" in str(err.value) and "connection" in str(err.value).lower()
    assert time.monotonic() - t0 < 5


def test_server_that_cannot_start_fails_up_fast_with_its_log(vllm_installed, tmp_path, monkeypatch):
    """A bad argument makes `vllm serve` exit at once: `up` must not wait out its timeout nor let the supervisor
    retry five times, but stop it and raise with the server's own complaint."""
    monkeypatch.setenv("DOCINTEL_VLLM_BIN", str(vllm_installed))
    t0 = time.monotonic()
    with pytest.raises(launcher.LauncherError) as err:
        launcher.up("cpu-tiny", only=["embeddings"], ports={"embeddings": 1}, state=tmp_path, settings=NO_KEY,
                    extra_args={"embeddings": ("--no-such-flag",)}, timeout=300)
    assert "no-such-flag" in str(err.value) and "did not start" in str(err.value)
    assert time.monotonic() - t0 < 200
    assert not (tmp_path / "embeddings.supervisor.pid").exists()
    assert launcher.status(state=tmp_path, settings=NO_KEY)[0].state == "stopped"


def test_pipeline_backends_reach_the_servers_with_settings_only(embed_server, chat_server):
    """models.backends builds the clients from settings alone; the cpu-tiny servers answer to the settings' model
    names (served as aliases), so pointing the URLs at them is all the pipeline needs."""
    from models import backends

    s = Settings(embed_backend="vllm", llm_backend="vllm", ocr_backend="vllm", vllm_api_key=embed_server.api_key,
                 vllm_embed_url=embed_server.api_url, vllm_llm_url=chat_server.api_url)
    emb = VllmEmbedder.from_settings(s)
    assert emb.model_name == s.vllm_embed_model and emb.dimension == 128
    assert len(emb.embed_documents(TEXTS[:3])) == 3
    reasoner = backends.reasoner(s)
    assert isinstance(reasoner, VllmReasoner) and reasoner.reasoning_effort == s.reasoning_effort
    assert isinstance(reasoner.answer("Q?", PASSAGES).reasoning, str)
    assert isinstance(backends.ocr_backend(s), VllmOcr)


def test_killed_server_is_restarted_and_requests_succeed_after_retries(embed_server, vllm_servers, vllm_report):
    """SIGKILL the embeddings server's whole process group mid-sequence: the supervisor restarts it and the client's
    retries (connection refused while it starts) carry the sequence through. Runs last: it costs a server start."""
    emb = VllmEmbedder(embed_server.api_url, embed_server.alias, api_key=embed_server.api_key, dimension=128,
                       max_retries=200, backoff_base=0.5, backoff_max=3.0, timeout=30)  # a CPU server start: 1-3 min
    assert len(emb.embed_query("before")) == 128
    pid = embed_server.server_pid()
    os.killpg(pid, signal.SIGKILL)
    t0 = time.monotonic()
    results = [emb.embed_query(f"during restart {i}") for i in range(3)]
    took = time.monotonic() - t0
    assert all(len(v) == 128 for v in results)
    assert emb.retries > 0
    assert embed_server.server_pid() != pid
    st = {s.name: s for s in launcher.status(state=vllm_servers["state"],
                                              settings=Settings(vllm_api_key=embed_server.api_key))}
    assert st["embeddings"].restarts == 1 and st["embeddings"].ready
    vllm_report(f"killed embeddings server restarted by its supervisor; requests through after {took:.0f} s, "
                f"{emb.retries} retries")
