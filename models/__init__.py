"""Model services behind one small interface per stage: OCR, embeddings, reasoning.

Embedded defaults run on CPU in-process; production backends talk to vLLM servers. ``models.backends`` picks one
per stage from settings.
"""
