"""vLLM throughput as the pipeline sees it versus the best a direct client gets from the same server, same run.

    .venv/bin/python -m benchmarks.vllm                       # starts the cpu-tiny servers (about 2 min), stops them
    .venv/bin/python -m benchmarks.vllm --embed-url http://gpu:8001/v1 --llm-url http://gpu:8004/v1   # running ones

- Embeddings: a full ingest (the real Prefect flow, vllm embeddings backend) of the sample PDFs; passages/s =
  chunks / the ingest summary's ``stage_seconds["embeddings"]``. Against it: the same passages sent by
  ``VllmEmbedder`` directly, over batch sizes and requests in flight; the best is the reference. The pipeline should
  reach at least 0.9 of it.
- Chat: generated tokens/s of ``docintel ask`` (``tasks.answer.answer_question``, what the command runs, with the
  vllm reasoner) versus a direct chat completion of the same prompt; tokens are the server's own count
  (``vllm:generation_tokens_total``) for the pipeline and ``usage.completion_tokens`` for the direct call.

Prints a Markdown table. With the tiny random-weight models the numbers measure the plumbing, not a real model.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRATCH = Path(tempfile.mkdtemp(prefix="docintel-bench-vllm-"))
os.environ["PREFECT_HOME"] = str(SCRATCH / "prefect")
os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
os.environ["DOCINTEL_DB_URI"] = str(SCRATCH / "lancedb")
sys.path.insert(0, str(REPO))

import docintel  # noqa: E402,F401
from docintel.settings import get_settings  # noqa: E402

SAMPLES = ["ca2_1-1.pdf", "gov.uscourts.cacd.652774.40.0.pdf", "gov.uscourts.cand.203070.27.0.pdf",
           "ca1_00117684624.pdf", "ca5_00516242060.pdf"]
QUESTION = "What standard applies to a preliminary injunction?"


def _configure(embed_url: str, embed_model: str, llm_url: str, llm_model: str, batch: int, chunk_chars: int) -> None:
    os.environ.update({
        "DOCINTEL_EMBED_BACKEND": "vllm", "DOCINTEL_LLM_BACKEND": "vllm",
        "DOCINTEL_VLLM_EMBED_URL": embed_url, "DOCINTEL_VLLM_EMBED_MODEL": embed_model,
        "DOCINTEL_VLLM_LLM_URL": llm_url, "DOCINTEL_VLLM_LLM_MODEL": llm_model,
        "DOCINTEL_EMBED_BATCH_SIZE": str(batch), "DOCINTEL_CHUNK_TARGET_CHARS": str(chunk_chars),
        "DOCINTEL_SEARCH_K": "2",
    })
    get_settings.cache_clear()


def _generation_tokens(base_url: str) -> float:
    from models.launcher import probe

    _, metrics, _ = probe(base_url)
    return metrics.get("vllm:generation_tokens_total", 0.0)


def bench_embeddings(embed_url: str) -> dict:
    from flows.ingest import ingest_documents
    from models.vllm_clients import VllmEmbedder
    from tasks.store import CHUNKS, open_store

    settings = get_settings()
    paths = [str(REPO / "data" / "samples" / name) for name in SAMPLES if (REPO / "data" / "samples" / name).exists()]
    summary = ingest_documents(paths)
    if summary["failures"]:
        raise SystemExit(f"ingest failed: {summary['failures']}")
    chunks = summary["chunks_written"]
    embed_s = summary["stage_seconds"]["embeddings"]
    texts = [r["text"] for r in open_store(settings.db_uri).rows(CHUNKS, columns=["text"])]
    direct = []
    for batch in (16, 32, 64, 128):
        for in_flight in (1, 2, 4):
            client = VllmEmbedder(embed_url, settings.vllm_embed_model, settings=settings, batch_size=batch,
                                  max_in_flight=in_flight)
            client.embed_documents(texts[:8])  # warm, and learn the dimension
            best = None
            for _ in range(3):
                t0 = time.perf_counter()
                client.embed_documents(texts)
                took = time.perf_counter() - t0
                best = took if best is None else min(best, took)
            direct.append((len(texts) / best, batch, in_flight))
    top = max(direct)
    return {"chunks": chunks, "pipeline_s": embed_s, "pipeline_rate": chunks / embed_s, "direct_rate": top[0],
            "direct_batch": top[1], "direct_in_flight": top[2], "pipeline_batch": settings.embed_batch_size,
            "ingest_s": summary["seconds"]}


def bench_chat(llm_url: str, runs: int = 3) -> dict:
    from models.backends import reasoner
    from models.vllm_clients import VllmReasoner
    from tasks.answer import answer_question, passages_from_hits
    from tasks.search import search

    settings = get_settings()
    base = llm_url.removesuffix("/v1")
    pipe_tokens = pipe_s = 0.0
    for _ in range(runs):
        before = _generation_tokens(base)
        t0 = time.perf_counter()
        answer_question(QUESTION, settings=settings)
        pipe_s += time.perf_counter() - t0
        pipe_tokens += _generation_tokens(base) - before
    client = reasoner(settings)
    assert isinstance(client, VllmReasoner)
    params = client._params(QUESTION, passages_from_hits(search(QUESTION, settings=settings)))
    direct_tokens = direct_s = 0.0
    for _ in range(runs):
        t0 = time.perf_counter()
        resp = client._client.chat.completions.create(**params)
        direct_s += time.perf_counter() - t0
        direct_tokens += resp.usage.completion_tokens if resp.usage else 0
    return {"pipeline_tokens": pipe_tokens, "pipeline_s": pipe_s, "pipeline_rate": pipe_tokens / pipe_s,
            "direct_tokens": direct_tokens, "direct_s": direct_s, "direct_rate": direct_tokens / direct_s}


def report(emb: dict, chat: dict) -> str:
    e_ratio = emb["pipeline_rate"] / emb["direct_rate"]
    c_ratio = chat["pipeline_rate"] / chat["direct_rate"]
    lines = [
        "| measure | pipeline | direct client (best) | pipeline / direct |",
        "|---|---|---|---|",
        f"| embeddings, passages/s ({emb['chunks']} passages) | {emb['pipeline_rate']:.0f} "
        f"(batch {emb['pipeline_batch']}, {emb['pipeline_s']:.2f} s in stage) | {emb['direct_rate']:.0f} "
        f"(batch {emb['direct_batch']}, {emb['direct_in_flight']} in flight) | {e_ratio:.2f} "
        f"{'ok' if e_ratio >= 0.9 else 'BELOW 0.9'} |",
        f"| chat, generated tokens/s | {chat['pipeline_rate']:.0f} ({chat['pipeline_tokens']:.0f} tokens, "
        f"{chat['pipeline_s']:.1f} s incl. search) | {chat['direct_rate']:.0f} ({chat['direct_tokens']:.0f} tokens, "
        f"{chat['direct_s']:.1f} s) | {c_ratio:.2f} |",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--embed-url", help="a running embeddings server (OpenAI base URL); default: start cpu-tiny")
    ap.add_argument("--llm-url", help="a running chat server (OpenAI base URL)")
    ap.add_argument("--embed-model", default=None)
    ap.add_argument("--llm-model", default=None)
    ap.add_argument("--batch", type=int, default=64, help="the pipeline's DOCINTEL_EMBED_BATCH_SIZE")
    ap.add_argument("--chunk-chars", type=int, default=300, help="passage size (300 keeps k=2 prompts in 512 tokens)")
    args = ap.parse_args(argv)
    state = None
    try:
        if not args.embed_url or not args.llm_url:
            from models import launcher

            state = SCRATCH / "run"
            ports = {"embeddings": launcher.free_port(), "reasoning": launcher.free_port()}
            print(f"starting cpu-tiny servers (state {state}) ...", file=sys.stderr)
            statuses = {st.name: st for st in launcher.up("cpu-tiny", ports=ports, state=state, timeout=900)}
            args.embed_url = args.embed_url or statuses["embeddings"].url
            args.llm_url = args.llm_url or statuses["reasoning"].url
            args.embed_model = args.embed_model or statuses["embeddings"].model
            args.llm_model = args.llm_model or statuses["reasoning"].model
        s = get_settings()
        _configure(args.embed_url, args.embed_model or s.vllm_embed_model, args.llm_url,
                   args.llm_model or s.vllm_llm_model, args.batch, args.chunk_chars)
        emb = bench_embeddings(args.embed_url)
        chat = bench_chat(args.llm_url)
        print(report(emb, chat))
        return 0
    finally:
        if state is not None:
            from models import launcher

            launcher.down(state=state)
        shutil.rmtree(SCRATCH, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
