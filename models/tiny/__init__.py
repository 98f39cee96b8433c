"""Tiny local models (config + tokenizer only) that a CPU build of vLLM serves with ``--load-format dummy``."""
