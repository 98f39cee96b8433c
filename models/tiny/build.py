"""Build two tiny models from local files only (no download), for a CPU build of vLLM to serve.

    python -m models.tiny.build OUTDIR        # writes OUTDIR/embed and OUTDIR/chat, prints their paths

- ``embed``: a ModernBERT encoder (``ModernBertModel``) served with ``--runner pooling`` for ``/v1/embeddings``.
- ``chat``: a Llama-style decoder (``LlamaForCausalLM``) with a ChatML chat template and ``<think>``/``</think>``
  tokens (so a reasoning parser can be switched on), for ``/v1/chat/completions``.

Both are config-only: vLLM fills random weights from the config with ``--load-format dummy``. The answers are
therefore noise; what they exercise is the real server, its API, batching, metrics, errors and the clients.
A byte-level BPE tokenizer is trained with the ``tokenizers`` library on ``training-text.txt`` (see ATTRIBUTION.md).

Deterministic (single-threaded training, sorted JSON) and idempotent: a stamp file with a fingerprint of this
builder and its training text makes a second call a no-op; a build goes to a temporary folder that is renamed
into place, so an interrupted build never leaves a half-written model behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TRAINING_TEXT = HERE / "training-text.txt"
STAMP = ".docintel-tiny.json"
BUILD_VERSION = 1

EMBED_NAME = "embed"
CHAT_NAME = "chat"

# CPU attention in vLLM needs a head size in {32, 64, 80, 96, 112, 128, ...}: 128 hidden / 4 heads = 32.
HIDDEN = 128
HEADS = 4
LAYERS = 2
INTERMEDIATE = 256
MAX_POSITIONS = 512
VOCAB_TARGET = 2048

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
BOS, EOS, IM_START, IM_END = "<s>", "</s>", "<|im_start|>", "<|im_end|>"
SPECIAL = [PAD, UNK, CLS, SEP, MASK, BOS, EOS, IM_START, IM_END]
THINK = ["<think>", "</think>"]  # added tokens, not special: they must survive detokenisation for a reasoning parser

# ChatML. Content may be a string or a list of OpenAI parts (text / image_url), so vLLM detects the "openai" format.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'text' %}{{ part['text'] }}{% else %}{{ '[' + part['type'] + ']' }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def fingerprint() -> str:
    h = hashlib.sha256()
    h.update(f"v{BUILD_VERSION}".encode())
    h.update(Path(__file__).read_bytes())
    h.update(TRAINING_TEXT.read_bytes())
    return h.hexdigest()[:16]


def _train_tokenizer():
    os.environ["RAYON_NUM_THREADS"] = "1"  # one thread: merges come out the same on every machine
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_TARGET,
        min_frequency=2,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    lines = TRAINING_TEXT.read_text(encoding="utf-8").splitlines()
    tok.train_from_iterator(lines, trainer=trainer)
    tok.add_tokens(THINK)
    return tok


def _with_post_processor(tok, single: str, pair: str, specials: list[str]):
    from tokenizers import Tokenizer, processors

    copy = Tokenizer.from_str(tok.to_str())
    copy.post_processor = processors.TemplateProcessing(
        single=single, pair=pair, special_tokens=[(s, tok.token_to_id(s)) for s in specials]
    )
    return copy


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _write_embed(dest: Path, tok) -> None:
    dest.mkdir(parents=True)
    t = _with_post_processor(tok, f"{CLS} $A {SEP}", f"{CLS} $A {SEP} $B:1 {SEP}:1", [CLS, SEP])
    t.save(str(dest / "tokenizer.json"), pretty=True)
    ids = {s: tok.token_to_id(s) for s in SPECIAL}
    _write_json(dest / "tokenizer_config.json", {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": MAX_POSITIONS,
        "clean_up_tokenization_spaces": False,
        "pad_token": PAD, "unk_token": UNK, "cls_token": CLS, "sep_token": SEP, "mask_token": MASK,
    })
    _write_json(dest / "config.json", {
        "architectures": ["ModernBertModel"],
        "model_type": "modernbert",
        "vocab_size": t.get_vocab_size(),
        "hidden_size": HIDDEN,
        "intermediate_size": INTERMEDIATE,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "max_position_embeddings": MAX_POSITIONS,
        "hidden_activation": "gelu",
        "global_attn_every_n_layers": 1,
        "local_attention": 128,
        "global_rope_theta": 160000.0,
        "local_rope_theta": 10000.0,
        "norm_eps": 1e-5,
        "norm_bias": False,
        "attention_bias": False,
        "mlp_bias": False,
        "classifier_pooling": "mean",
        "pad_token_id": ids[PAD], "bos_token_id": ids[CLS], "eos_token_id": ids[SEP],
        "cls_token_id": ids[CLS], "sep_token_id": ids[SEP],
        "torch_dtype": "float32",
    })
    # sentence-transformers layout: vLLM reads the pooling from here (mean pooling, then L2-normalised vectors).
    (dest / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ], indent=2) + "\n", encoding="utf-8")
    (dest / "1_Pooling").mkdir()
    _write_json(dest / "1_Pooling" / "config.json", {
        "word_embedding_dimension": HIDDEN, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False,
    })
    _write_json(dest / "sentence_bert_config.json", {"max_seq_length": MAX_POSITIONS, "do_lower_case": False})


def _write_chat(dest: Path, tok) -> None:
    dest.mkdir(parents=True)
    t = _with_post_processor(tok, f"{BOS} $A", f"{BOS} $A $B:1", [BOS])
    t.save(str(dest / "tokenizer.json"), pretty=True)
    ids = {s: tok.token_to_id(s) for s in SPECIAL}
    _write_json(dest / "tokenizer_config.json", {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": MAX_POSITIONS,
        "clean_up_tokenization_spaces": False,
        "bos_token": BOS, "eos_token": IM_END, "pad_token": PAD, "unk_token": UNK,
        "chat_template": CHAT_TEMPLATE,
    })
    _write_json(dest / "config.json", {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": t.get_vocab_size(),
        "hidden_size": HIDDEN,
        "intermediate_size": INTERMEDIATE,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "num_key_value_heads": HEADS,
        "head_dim": HIDDEN // HEADS,
        "hidden_act": "silu",
        "max_position_embeddings": MAX_POSITIONS,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "bos_token_id": ids[BOS], "eos_token_id": ids[IM_END], "pad_token_id": ids[PAD],
        "torch_dtype": "float32",
    })
    _write_json(dest / "generation_config.json", {"bos_token_id": ids[BOS], "eos_token_id": ids[IM_END]})


def build(outdir: str | os.PathLike[str]) -> dict[str, Path]:
    """Build (or find already built) tiny models in ``outdir``; returns ``{"embed": path, "chat": path}``."""
    out = Path(outdir).resolve()
    paths = {EMBED_NAME: out / EMBED_NAME, CHAT_NAME: out / CHAT_NAME}
    want = fingerprint()
    stamp = out / STAMP
    if stamp.is_file() and all(p.is_dir() for p in paths.values()):
        try:
            if json.loads(stamp.read_text()).get("fingerprint") == want:
                return paths
        except ValueError:
            pass
    out.mkdir(parents=True, exist_ok=True)
    tok = _train_tokenizer()
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=out))
    try:
        _write_embed(tmp / EMBED_NAME, tok)
        _write_chat(tmp / CHAT_NAME, tok)
        stamp.unlink(missing_ok=True)
        for name, dest in paths.items():
            if dest.exists():
                shutil.rmtree(dest)
            (tmp / name).rename(dest)
        _write_json(stamp, {"fingerprint": want, "vocab_size": tok.get_vocab_size(), "hidden_size": HIDDEN})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return paths


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0].startswith("-"):
        print("usage: python -m models.tiny.build OUTDIR", file=sys.stderr)
        return 2
    for name, path in build(args[0]).items():
        print(f"{name}\t{path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
