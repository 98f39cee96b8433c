"""Clients for the vLLM model servers (OpenAI-compatible API), implementing the Protocols of ``models.base``.

- :class:`VllmOcr` (``OcrBackend``): one chat request per page image (PNG data URL + HunyuanOCR's instruction).
- :class:`VllmEmbedder` (``Embedder``): batched ``/v1/embeddings`` with a bounded number of requests in flight.
- :class:`VllmReasoner` (``Reasoner``): chat completions with ``reasoning_effort``; the chain of thought (message
  field ``reasoning``, older servers ``reasoning_content``) is kept apart from the answer.

Retries are ours alone (the SDK's are switched off with ``max_retries=0``): connection errors, timeouts, 429 and 5xx
are retried with exponential backoff and full jitter, up to ``settings.vllm_max_retries`` times; any other 4xx is
raised at once. A final failure raises :class:`ModelServerError` naming the service, URL and the server's reason,
and never the API key.
"""

from __future__ import annotations

import base64
import io
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx
import numpy as np
import openai

from docintel.settings import Settings, get_settings
from models.base import OcrResult, Passage, Reasoning

log = logging.getLogger(__name__)
T = TypeVar("T")

OCR_INSTRUCTION = (
    "Extract all information from the main body of the document image and represent it in markdown format, "
    "ignoring headers and footers. Tables should be expressed in HTML format, formulas in the document should be "
    "represented using LaTeX format, and the parsing should be organized according to the reading order."
)

ANSWER_SYSTEM_PROMPT = (
    "You answer questions about legal documents using only the numbered passages given. Cite every statement with "
    "the passage number in square brackets, like [2]. If the passages do not contain the answer, say so."
)


class ModelServerError(RuntimeError):
    """A model server request failed for good. Carries what is safe to show: never the API key."""

    def __init__(self, message: str, *, service: str, url: str, status: int | None = None,
                 attempts: int = 1, retryable: bool = False):
        super().__init__(message)
        self.service = service
        self.url = url
        self.status = status
        self.attempts = attempts
        self.retryable = retryable


def _redact(text: str, secret: str | None) -> str:
    if secret:
        text = text.replace(secret, "****")
    return text


def _server_reason(exc: Exception) -> str:
    """The server's own explanation of an error, shortened."""
    if isinstance(exc, openai.APIStatusError):
        body = exc.body
        msg = None
        if isinstance(body, dict):
            err = body.get("error", body)
            msg = err.get("message") if isinstance(err, dict) else str(err)
            msg = msg or body.get("message") or body.get("detail")
        reason = f"HTTP {exc.status_code}: {msg or exc.message}"
    elif isinstance(exc, openai.APITimeoutError):
        reason = "request timed out"
    elif isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__
        reason = f"connection failed ({type(cause).__name__}: {cause})" if cause else "connection failed"
    else:
        reason = f"{type(exc).__name__}: {exc}"
    return reason[:500]


def _retryable(exc: Exception, retry_timeouts: bool = True) -> bool:
    if isinstance(exc, openai.APITimeoutError):  # checked first: a subclass of APIConnectionError
        return retry_timeouts
    if isinstance(exc, openai.APIConnectionError):
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code == 429 or exc.status_code >= 500 or exc.status_code == 408
    return False


def _retry_after(exc: Exception) -> float | None:
    if isinstance(exc, openai.APIStatusError):
        value = exc.response.headers.get("retry-after")
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None
    return None


class _VllmClient:
    """What the three clients share: one openai client, the retry loop and safe errors."""

    service = "model"

    def __init__(self, base_url: str, model: str, *, settings: Settings | None = None, api_key: str | None = None,
                 timeout: float | None = None, max_retries: int | None = None, backoff_base: float = 0.5,
                 backoff_max: float = 20.0, retry_timeouts: bool = True):
        s = settings or get_settings()
        if api_key is None and s.vllm_api_key is not None:
            api_key = s.vllm_api_key.get_secret_value() or None
        self._secret = api_key
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.max_retries = s.vllm_max_retries if max_retries is None else max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.timeout = s.vllm_timeout_seconds if timeout is None else timeout
        self.retry_timeouts = retry_timeouts
        # The SDK needs some key; vLLM without --api-key ignores it.
        self._client = openai.OpenAI(base_url=self.base_url, api_key=api_key or "EMPTY", timeout=self.timeout,
                                     max_retries=0)
        self.attempts = 0  # requests sent, retries included (for stats and tests)
        self.retries = 0
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **kw: Any):
        """The client for the server and model that settings name (``vllm_*_url``, ``vllm_*_model``)."""
        return cls(settings=settings or get_settings(), **kw)

    def __repr__(self) -> str:  # never shows the key
        return f"{type(self).__name__}(base_url={self.base_url!r}, model={self.model!r})"

    def _sleep(self, attempt: int, exc: Exception) -> None:
        delay = random.uniform(0, min(self.backoff_max, self.backoff_base * 2 ** attempt))  # full jitter
        after = _retry_after(exc)
        if after is not None:
            delay = max(delay, min(after, self.backoff_max))
        time.sleep(delay)

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        last: Exception | None = None
        for attempt in range(self.max_retries + 1):
            with self._lock:
                self.attempts += 1
                if attempt:
                    self.retries += 1
            try:
                return fn()
            except openai.OpenAIError as exc:
                last = exc
                if not _retryable(exc, self.retry_timeouts):
                    raise self._error(what, exc, attempt + 1, retryable=False) from None
                if attempt < self.max_retries:
                    log.warning("%s %s at %s failed (%s); retry %d/%d", self.service, what, self.base_url,
                                _redact(_server_reason(exc), self._secret), attempt + 1, self.max_retries)
                    self._sleep(attempt, exc)
        assert last is not None
        raise self._error(what, last, self.max_retries + 1, retryable=True) from None

    def _error(self, what: str, exc: Exception, attempts: int, retryable: bool) -> ModelServerError:
        reason = _redact(_server_reason(exc), self._secret)
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        status = exc.status_code if isinstance(exc, openai.APIStatusError) else None
        msg = f"{self.service} server {self.base_url} (model {self.model!r}): {what} failed{tries}: {reason}"
        return ModelServerError(msg, service=self.service, url=self.base_url, status=status, attempts=attempts,
                                retryable=retryable)

    def close(self) -> None:
        self._client.close()


# --------------------------------------------------------------------------------------------------------- OCR

_LOOP = re.compile(r"(.{1,200}?)\1{5,}", re.DOTALL)  # a unit repeated 6+ times in a row


def strip_repetition(text: str, min_span: int = 120) -> str:
    """Cut degenerate repetition loops (a phrase or line repeated over and over, typical of a VLM that lost its
    place) down to one copy. Short runs and runs of pure punctuation (dot leaders, rules) are left alone."""

    def fix(m: re.Match[str]) -> str:
        unit = m.group(1)
        if len(m.group(0)) < min_span or not re.search(r"\w", unit):
            return m.group(0)
        return unit

    prev = None
    while prev != text:
        prev, text = text, _LOOP.sub(fix, text)
    return text


class VllmOcr(_VllmClient):
    """HunyuanOCR behind vLLM: page image in, text out (no word boxes)."""

    service = "ocr"
    name = "vllm-hunyuan-ocr"

    def __init__(self, base_url: str | None = None, model: str | None = None, *, settings: Settings | None = None,
                 instruction: str = OCR_INSTRUCTION, max_tokens: int = 4096, page_timeout: float | None = None,
                 **kw: Any):
        s = settings or get_settings()
        timeout = page_timeout if page_timeout is not None else s.ocr_timeout_seconds
        kw.setdefault("timeout", timeout)
        # A page that ran into its timeout would run into it again: fail it (the pipeline records the failure)
        # instead of blocking the queue for max_retries more timeouts. Connection errors, 429 and 5xx are retried.
        kw.setdefault("retry_timeouts", False)
        super().__init__(base_url or s.vllm_ocr_url, model or s.vllm_ocr_model, settings=s, **kw)
        self.instruction = instruction
        self.max_tokens = max_tokens

    @staticmethod
    def image_data_url(image) -> str:
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")

    def messages(self, image) -> list[dict[str, Any]]:
        return [
            {"role": "system", "content": ""},
            {"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": self.image_data_url(image)}},
                {"type": "text", "text": self.instruction},
            ]},
        ]

    def recognize(self, image, dpi: int) -> OcrResult:
        msgs = self.messages(image)
        resp = self._call("OCR of one page", lambda: self._client.chat.completions.create(
            model=self.model, messages=msgs, temperature=0, max_tokens=self.max_tokens))
        choice = resp.choices[0]
        text = choice.message.content or ""
        if choice.finish_reason == "length":
            log.warning("OCR output hit max_tokens=%d; the page may be cut short", self.max_tokens)
        return OcrResult(text=strip_repetition(text).strip())


# -------------------------------------------------------------------------------------------------- Embeddings

class VllmEmbedder(_VllmClient):
    """Embeddings from a pooling model: ``batch_size`` texts per request, at most ``max_in_flight`` at once."""

    service = "embeddings"

    def __init__(self, base_url: str | None = None, model: str | None = None, *, settings: Settings | None = None,
                 dimension: int | None = None, batch_size: int | None = None, max_in_flight: int = 2,
                 query_prefix: str = "", document_prefix: str = "", **kw: Any):
        s = settings or get_settings()
        super().__init__(base_url or s.vllm_embed_url, model or s.vllm_embed_model, settings=s, **kw)
        self.model_name = self.model
        self.batch_size = batch_size or s.embed_batch_size
        self.max_in_flight = max(1, max_in_flight)
        self.query_prefix = query_prefix
        self.document_prefix = document_prefix
        self._dimension = dimension

    @property
    def dimension(self) -> int:
        """The vector size; asked of the server once (one tiny request) when not given."""
        if self._dimension is None:
            self._dimension = len(self._request(["dimension probe"])[0])
        return self._dimension

    def _request(self, texts: list[str]) -> list[list[float]]:
        # base64 float32: parsing JSON floats into Python objects costs the client more CPU than the request itself
        resp = self._call(f"embedding of {len(texts)} texts", lambda: self._client.embeddings.create(
            model=self.model, input=texts, encoding_format="base64"))
        data = sorted(resp.data, key=lambda d: d.index)
        if len(data) != len(texts):
            raise ModelServerError(f"embeddings server {self.base_url} returned {len(data)} vectors for "
                                   f"{len(texts)} texts", service=self.service, url=self.base_url)
        vectors = [np.frombuffer(base64.b64decode(d.embedding), dtype="<f4") for d in data]
        if self._dimension is not None:
            bad = {len(v) for v in vectors if len(v) != self._dimension}
            if bad:
                raise ModelServerError(
                    f"embeddings server {self.base_url} (model {self.model!r}) returned dimension "
                    f"{sorted(bad)}, expected {self._dimension}: is the right model served?",
                    service=self.service, url=self.base_url)
        return _unit_vectors(vectors)

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        texts = [self.document_prefix + t for t in texts]
        if not texts:
            return []
        _ = self.dimension  # fixes the expected size before batches run in parallel
        batches = [texts[i:i + self.batch_size] for i in range(0, len(texts), self.batch_size)]
        if len(batches) == 1 or self.max_in_flight == 1:
            results = [self._request(b) for b in batches]
        else:
            with ThreadPoolExecutor(max_workers=min(self.max_in_flight, len(batches))) as pool:
                results = list(pool.map(self._request, batches))
        return [v for batch in results for v in batch]

    def embed_query(self, text: str) -> list[float]:
        return self._request([self.query_prefix + text])[0]


def _unit_vectors(vectors: list[np.ndarray]) -> list[list[float]]:
    """Vectors scaled to unit length (a zero vector stays as it is)."""
    out = []
    for vector in vectors:
        norm = float(np.linalg.norm(vector))
        out.append((vector / norm if norm > 0 else vector).tolist())
    return out


# --------------------------------------------------------------------------------------------------- Reasoning

def format_passages(question: str, passages: Sequence[Passage]) -> str:
    blocks = [f"[{p.number}] {p.source}, page {p.page}:\n{p.text}" for p in passages]
    return "Passages:\n\n" + "\n\n".join(blocks) + f"\n\nQuestion: {question}"


def _reasoning_of(obj: Any) -> str:
    """The chain of thought of a message or a stream delta: ``reasoning`` (vLLM >= 0.11), else ``reasoning_content``."""
    for name in ("reasoning", "reasoning_content"):
        value = getattr(obj, name, None)
        if value is None and getattr(obj, "model_extra", None):
            value = obj.model_extra.get(name)
        if value:
            return value
    return ""


class VllmReasoner(_VllmClient):
    """Answers from retrieved passages with a reasoning model (gpt-oss-20b in production)."""

    service = "reasoning"
    name = "vllm-reasoner"

    def __init__(self, base_url: str | None = None, model: str | None = None, *, settings: Settings | None = None,
                 reasoning_effort: str | None = None, max_tokens: int | None = None, temperature: float | None = None,
                 system_prompt: str = ANSWER_SYSTEM_PROMPT, extra_body: dict[str, Any] | None = None, **kw: Any):
        s = settings or get_settings()
        super().__init__(base_url or s.vllm_llm_url, model or s.vllm_llm_model, settings=s, **kw)
        self.reasoning_effort = reasoning_effort or s.reasoning_effort
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.system_prompt = system_prompt
        self.extra_body = extra_body or {}

    def _params(self, question: str, passages: Sequence[Passage]) -> dict[str, Any]:
        params: dict[str, Any] = dict(
            model=self.model,
            messages=[{"role": "system", "content": self.system_prompt},
                      {"role": "user", "content": format_passages(question, passages)}],
            reasoning_effort=self.reasoning_effort,
        )
        if self.max_tokens is not None:  # None: the server allows the rest of the model's context
            params["max_tokens"] = self.max_tokens
        if self.temperature is not None:
            params["temperature"] = self.temperature
        if self.extra_body:
            params["extra_body"] = self.extra_body
        return params

    def answer(self, question: str, passages: Sequence[Passage]) -> Reasoning:
        params = self._params(question, passages)
        resp = self._call("answer", lambda: self._client.chat.completions.create(**params))
        msg = resp.choices[0].message
        if resp.choices[0].finish_reason == "length" and not msg.content:
            log.warning("reasoning model ran out of tokens (max_tokens=%s) before answering", self.max_tokens)
        return Reasoning(answer=(msg.content or "").strip(), reasoning=_reasoning_of(msg).strip(),
                         model=resp.model or self.model)

    def stream_answer(self, question: str, passages: Sequence[Passage]) -> Iterator[str]:
        """Yield answer text as it arrives; reasoning deltas are skipped. Only opening the stream is retried: once
        tokens have been yielded, a broken stream raises ModelServerError (the caller has half an answer)."""
        params = self._params(question, passages)
        stream = self._call("streamed answer", lambda: self._client.chat.completions.create(stream=True, **params))
        try:
            for chunk in stream:
                if not chunk.choices:
                    continue
                piece = chunk.choices[0].delta.content
                if piece:
                    yield piece
        except (openai.OpenAIError, httpx.HTTPError) as exc:
            raise self._error("streamed answer (interrupted)", exc, 1, retryable=False) from None
        finally:
            stream.close()


__all__ = ["ModelServerError", "OCR_INSTRUCTION", "VllmEmbedder", "VllmOcr", "VllmReasoner", "format_passages",
           "strip_repetition"]
