"""vLLM throughput as the pipeline sees it versus the best a direct client gets from the same server, same run.

    .venv/bin/python -m benchmarks.vllm                       # starts the cpu-tiny servers (about 2 min), stops them
    .venv/bin/python -m benchmarks.vllm --embed-shape minilm  # a heavier encoder, MiniLM-L6's shape (~8 min)
    .venv/bin/python -m benchmarks.vllm --embed-url http://gpu:8001/v1 --llm-url http://gpu:8004/v1   # running ones

- Embeddings: a full ingest (the real Prefect flow, vllm embeddings backend) of the sample PDFs; passages/s =
  chunks / the ingest summary's ``stage_seconds["embeddings"]``, the wall time during which the embedding stage had
  at least one request in flight. Against it: the same passages sent by ``VllmEmbedder`` directly, over batch sizes
  and requests in flight; the best is the reference. The pipeline should reach at least 0.9 of it. With the tiny
  encoder the server embeds faster than this machine's CPU chunks and cites, so the stage mostly waits for work;
  ``--embed-shape minilm`` gives the server an encoder the shape of all-MiniLM-L6 (6 layers, 384 wide), slower than
  the stages before it as the production encoder is, so the stage has a backlog. (ModernBERT-base's own shape embeds
  about 2 passages/s on this CPU: a single pass would take minutes.)
- Chat: generated tokens/s of ``docintel ask`` (``tasks.answer.answer_question``, what the command runs, with the
  vllm reasoner) versus a direct chat completion of the same prompt; tokens are the server's own count
  (``vllm:generation_tokens_total``) for the pipeline and ``usage.completion_tokens`` for the direct call.

Prints a Markdown table. With the tiny random-weight models the numbers measure the plumbing, not a real model.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
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


def _minilm_shaped(models_dir: Path) -> None:
    """The tiny models, with the embeddings encoder reshaped to all-MiniLM-L6's size (6 layers, 384 wide): slower
    than the stages before it on this CPU, as the production encoder is on a GPU node, so the pipeline's batching is
    measured with a backlog rather than against a server that mostly waits."""
    import json

    from models.tiny.build import EMBED_NAME, build

    embed = build(models_dir)[EMBED_NAME]
    config = json.loads((embed / "config.json").read_text())
    config.update(hidden_size=384, intermediate_size=1536, num_hidden_layers=6, num_attention_heads=6)
    (embed / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    pooling = json.loads((embed / "1_Pooling" / "config.json").read_text())
    pooling["word_embedding_dimension"] = 384
    (embed / "1_Pooling" / "config.json").write_text(json.dumps(pooling, indent=2, sort_keys=True) + "\n")


def _generation_tokens(base_url: str) -> float:
    from models.launcher import probe

    _, metrics, _ = probe(base_url)
    return metrics.get("vllm:generation_tokens_total", 0.0)


def bench_embeddings(embed_url: str, grid: tuple[tuple[int, ...], tuple[int, ...]], passes: int) -> dict:
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
    for batch in grid[0]:
        for in_flight in grid[1]:
            client = VllmEmbedder(embed_url, settings.vllm_embed_model, settings=settings, batch_size=batch,
                                  max_in_flight=in_flight)
            client.embed_documents(texts[:8])  # warm, and learn the dimension
            best = None
            for _ in range(passes):
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
    ap.add_argument("--batch", type=int, default=32, help="the pipeline's DOCINTEL_EMBED_BATCH_SIZE")
    ap.add_argument("--chunk-chars", type=int, default=300, help="passage size (300 keeps k=2 prompts in 512 tokens)")
    ap.add_argument("--embed-shape", choices=["tiny", "minilm"], default="tiny",
                    help="minilm: serve an encoder of all-MiniLM-L6's shape (random weights) instead of the tiny one")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a killed benchmark still stops its servers (finally)
    state = None
    try:
        if not args.embed_url or not args.llm_url:
            from models import launcher

            if args.embed_shape == "minilm":
                os.environ["DOCINTEL_TINY_MODELS"] = str(SCRATCH / "models")
                _minilm_shaped(SCRATCH / "models")

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
        if args.embed_shape == "minilm":  # about 30 s a pass on 2 cores: the batch sizes and depths that matter
            emb = bench_embeddings(args.embed_url, ((32, 64), (1, 2, 4)), passes=1)
        else:
            emb = bench_embeddings(args.embed_url, ((16, 32, 64, 128), (1, 2, 4)), passes=3)
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
