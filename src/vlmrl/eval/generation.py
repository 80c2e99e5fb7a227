"""Generation backends for evaluation: an OpenAI-compatible server, vLLM offline, transformers.

Every backend takes one request per sample and the same explicit sampling parameters, so no
server-side or model `generation_config.json` default can change what is measured.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import os
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from vlmrl.data.prompt import IMAGE_PLACEHOLDER, split_on_images
from vlmrl.errors import UserError
from vlmrl.utils import openai_api


@dataclass(frozen=True)
class SamplingParams:
    """The sampling every backend applies. `top_k` / `repetition_penalty` None = not set: off
    (-1 / 1.0) in-process; over HTTP sent only to servers known to accept them (vLLM, SGLang).

    Qwen2.5-VL's generation_config.json says temperature 0.1, top_k 1, top_p 0.001,
    repetition_penalty 1.05: vLLM and transformers apply those to anything left unset.
    """

    temperature: float = 0.6
    top_p: float = 1.0
    top_k: int | None = None
    max_new_tokens: int = 8192
    repetition_penalty: float | None = None
    seed: int | None = 0

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise UserError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise UserError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k is not None and (self.top_k == 0 or self.top_k < -1):
            raise UserError(f"top_k must be -1 (off) or a positive integer, got {self.top_k}")
        if self.repetition_penalty is not None and self.repetition_penalty <= 0:
            raise UserError(f"repetition_penalty must be > 0 (1.0 = off), got {self.repetition_penalty}")
        if self.max_new_tokens < 1:
            raise UserError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def effective_top_k(self) -> int:
        return -1 if self.top_k is None else self.top_k

    @property
    def effective_repetition_penalty(self) -> float:
        return 1.0 if self.repetition_penalty is None else self.repetition_penalty


@dataclass(frozen=True)
class GenerationRequest:
    """One sample to generate: chat messages (content strings with `<image>` placeholders) + images."""

    key: str
    messages: tuple[dict[str, Any], ...]
    images: tuple[bytes, ...] = ()
    sample_index: int = 0


@dataclass
class Completion:
    text: str
    num_tokens: int | None = None
    finish_reason: str | None = None  # "stop" | "length" | engine-specific


OnResult = Callable[[GenerationRequest, Completion], None]


class Backend(Protocol):
    name: str

    def generate(
        self, requests: Sequence[GenerationRequest], params: SamplingParams, on_result: OnResult
    ) -> None:
        """Generate every request; call `on_result` as each finishes (so progress can be saved)."""

    def close(self) -> None: ...


def _split_placeholders(content: str, n_images_left: int) -> list[dict[str, str]]:
    """Content parts (`split_on_images`), checked to need no more images than are left."""
    parts = split_on_images(content)
    if sum(1 for p in parts if p["type"] == "image") > n_images_left:
        raise UserError(
            f"a prompt has more `{IMAGE_PLACEHOLDER}` placeholders than images ({n_images_left} left); "
            "every placeholder needs one image"
        )
    return parts


def _image_mime(data: bytes) -> str:
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "image/png"


def openai_messages(request: GenerationRequest) -> list[dict[str, Any]]:
    """Chat messages for /v1/chat/completions; images become data: URLs where their placeholder was."""
    if not request.images:
        return [{"role": m["role"], "content": m["content"]} for m in request.messages]
    images = list(request.images)
    out = []
    for message in request.messages:
        parts = []
        for part in _split_placeholders(message["content"], len(images)):
            if part["type"] == "text":
                parts.append(part)
            else:
                data = images.pop(0)
                url = f"data:{_image_mime(data)};base64,{base64.b64encode(data).decode('ascii')}"
                parts.append({"type": "image_url", "image_url": {"url": url}})
        out.append({"role": message["role"], "content": parts})
    if images:
        raise UserError(
            f"request {request.key}: {len(images)} image(s) without an `{IMAGE_PLACEHOLDER}` placeholder"
        )
    return out


class ServerError(Exception):
    """A retryable failure (connection, timeout, 429, 5xx)."""


# Fields outside OpenAI's chat-completions schema that we may send, and the option that sets each.
# Strict servers refuse them (OpenAI: 400 "Unrecognized request argument"; `transformers serve`:
# 422 "Unexpected fields"), so they go out only when set, or to servers that take them.
NONSTANDARD_FIELDS = {"top_k": "--top-k", "repetition_penalty": "--repetition-penalty"}
# `owned_by` in /v1/models of servers that accept those fields and, when a request leaves them out,
# fill them from the model's generation_config.json: they get the "off" values explicitly.
SAMPLING_EXTRAS_SERVERS = ("vllm", "sglang")


@dataclass
class OpenAIBackend:
    """Any OpenAI-compatible chat server (vLLM, SGLang, `transformers serve`, ...): httpx async,
    bounded concurrency, retries.

    Sends the standard fields (model, messages, temperature, top_p, max_tokens, n=1, seed) plus
    `top_k` / `repetition_penalty` when set, or always to vLLM/SGLang (whose `/v1/models` say so),
    which would otherwise fill them from the model's generation_config.json. Serve without a
    reasoning parser: the reward needs the `<think>` text in content.
    """

    base_url: str
    model: str | None = None
    api_key: str | None = None
    concurrency: int = 32
    max_retries: int = 5
    timeout_s: float = 3600.0
    retry_backoff_s: float = 1.0
    extra_body: dict[str, Any] = field(default_factory=dict)
    name: str = "openai"
    server_kind: str | None = None  # `owned_by` of the served model, read from /v1/models

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise UserError(
                f"--model {self.base_url!r}: an OpenAI-compatible URL starts with http:// or https://"
            )
        self.base_url = openai_api.base_url(self.base_url)
        if self.concurrency < 1:
            raise UserError(f"concurrency must be >= 1, got {self.concurrency}")
        if not self.timeout_s > 0:
            raise UserError(f"request timeout must be > 0 seconds, got {self.timeout_s}")
        if self.api_key is None:
            self.api_key = os.environ.get("OPENAI_API_KEY", "EMPTY")

    def _headers(self) -> dict[str, str]:
        return openai_api.auth_headers(self.api_key)

    def payload(self, request: GenerationRequest, params: SamplingParams) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": openai_messages(request),
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_new_tokens,
            "n": 1,
        }
        extras_welcome = (self.server_kind or "").lower() in SAMPLING_EXTRAS_SERVERS
        if params.top_k is not None or extras_welcome:
            body["top_k"] = params.effective_top_k
        if params.repetition_penalty is not None or extras_welcome:
            body["repetition_penalty"] = params.effective_repetition_penalty
        if params.seed is not None:
            # A distinct seed per sample: one shared seed would make the n samples identical.
            body["seed"] = params.seed * 100_003 + zlib.crc32(request.key.encode()) % 100_003
        body.update(self.extra_body)
        return body

    async def _get_models(self, client: Any) -> tuple[int, Any, str]:
        """GET /models with the request retries: (status, parsed JSON or None, last failure)."""
        import httpx

        last = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                await asyncio.sleep(openai_api.backoff_s(attempt, self.retry_backoff_s))
            try:
                response = await client.get(openai_api.models_url(self.base_url), headers=self._headers())
            except httpx.TransportError as exc:
                last = openai_api.transport_detail(exc)
                if isinstance(exc, httpx.TimeoutException):
                    last += f": no answer within {self.timeout_s:g} s (raise --request-timeout)"
                continue
            if response.status_code == 429:
                last = "HTTP 429"
                continue
            try:
                data = response.json()
            except ValueError:
                data = None
            return response.status_code, data, last
        return 0, None, last

    async def _resolve_model(self, client: Any) -> None:
        """Learn the server's kind (and the model name when none was given) from /v1/models."""
        status, data, last = await self._get_models(client)
        if status == 0:
            raise UserError(
                f"cannot reach {self.base_url}/models after {self.max_retries} retries ({last}); "
                "is the server running at that address?"
            )
        if status == 401:
            sent = "was refused" if self.api_key not in (None, "", "EMPTY") else "was not sent"
            raise UserError(
                f"{self.base_url}/models: HTTP 401: the server wants an API key and the one in $OPENAI_API_KEY "
                f"{sent}; set OPENAI_API_KEY to the key the server was started with"
            )
        entries = openai_api.model_entries(data) if status == 200 else None
        if self.model:
            # Informational only: some servers (`transformers serve`) answer 500 or list nothing.
            for entry in entries or []:
                if entry.get("id") == self.model and isinstance(entry.get("owned_by"), str):
                    self.server_kind = entry["owned_by"]
            return
        if entries is None:
            raise UserError(
                f"{self.base_url}/models answered HTTP {status} without a model list; "
                "pass the served model name with --served-model-name"
            )
        ids = [m.get("id") for m in entries]
        if len(ids) != 1:
            raise UserError(f"{self.base_url} serves {ids}; pick one with --served-model-name")
        self.model = ids[0]
        if isinstance(entries[0].get("owned_by"), str):
            self.server_kind = entries[0]["owned_by"]

    async def _post(self, client: Any, request: GenerationRequest, params: SamplingParams) -> Completion:
        import httpx

        body = self.payload(request, params)
        last: str = ""
        timed_out = False
        for attempt in range(self.max_retries + 1):
            if attempt:
                await asyncio.sleep(openai_api.backoff_s(attempt, self.retry_backoff_s))
            try:
                response = await client.post(
                    openai_api.chat_url(self.base_url), json=body, headers=self._headers()
                )
            except httpx.TransportError as exc:
                last = openai_api.transport_detail(exc)
                timed_out = isinstance(exc, httpx.TimeoutException)
                continue
            if openai_api.retryable(response.status_code):
                last = f"HTTP {response.status_code}: {' '.join(response.text[:200].split())}"
                timed_out = False
                continue
            if response.status_code != 200:
                raise UserError(
                    f"{self.base_url}/chat/completions refused request {request.key}: "
                    + openai_api.explain_refusal(
                        response.status_code, response.text, body, NONSTANDARD_FIELDS
                    )
                )
            try:
                data = response.json()
                choice = data["choices"][0]
                text = choice["message"]["content"] or ""
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                raise UserError(
                    f"{self.base_url}: unexpected response for {request.key}: {response.text[:300]!r}"
                ) from exc
            usage = data.get("usage") or {}
            return Completion(text, usage.get("completion_tokens"), choice.get("finish_reason"))
        hint = f"; raise --request-timeout (now {self.timeout_s:g} s)" if timed_out else ""
        raise UserError(
            f"{self.base_url}: request {request.key} failed after {self.max_retries} retries ({last}){hint}; "
            "finished samples are saved, re-run the same command to resume"
        )

    async def _run(
        self, requests: Sequence[GenerationRequest], params: SamplingParams, on_result: OnResult
    ) -> None:
        import httpx

        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        async with httpx.AsyncClient(timeout=self.timeout_s, limits=limits) as client:
            await self._resolve_model(client)
            semaphore = asyncio.Semaphore(self.concurrency)

            async def one(request: GenerationRequest) -> None:
                async with semaphore:
                    completion = await self._post(client, request, params)
                on_result(request, completion)

            tasks = [asyncio.create_task(one(r)) for r in requests]
            try:
                await asyncio.gather(*tasks)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    def generate(
        self, requests: Sequence[GenerationRequest], params: SamplingParams, on_result: OnResult
    ) -> None:
        if requests:
            asyncio.run(self._run(requests, params, on_result))

    def close(self) -> None:
        pass


class VLLMBackend:
    """vLLM's offline engine (`vllm.LLM.chat`) in this process; needs a GPU machine with vllm installed."""

    name = "vllm"

    def __init__(
        self,
        model: str,
        *,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.85,
        max_model_len: int | None = None,
        seed: int = 0,
        chunk_size: int = 512,
        **llm_kwargs: Any,
    ):
        if importlib.util.find_spec("vllm") is None:
            raise UserError(
                "the `vllm` backend needs vLLM installed (`pip install vllm`, on a GPU machine); "
                "or serve the model (`vllm serve PATH --generation-config vllm`) and use --backend openai "
                "with --model http://HOST:PORT, or use --backend hf for small models on CPU"
            )
        from vllm import LLM

        kwargs: dict[str, Any] = {
            "model": model,
            "tensor_parallel_size": tensor_parallel_size,
            "gpu_memory_utilization": gpu_memory_utilization,
            "seed": seed,
            # Our SamplingParams are complete; do not let the model's generation_config fill gaps.
            "generation_config": "vllm",
        }
        if max_model_len is not None:
            kwargs["max_model_len"] = max_model_len
        kwargs.update(llm_kwargs)
        self.llm = LLM(**kwargs)
        self.chunk_size = chunk_size

    def generate(
        self, requests: Sequence[GenerationRequest], params: SamplingParams, on_result: OnResult
    ) -> None:
        from vllm import SamplingParams as VSamplingParams

        sampling = VSamplingParams(
            n=1,
            temperature=params.temperature,
            top_p=params.top_p,
            top_k=params.effective_top_k,
            max_tokens=params.max_new_tokens,
            repetition_penalty=params.effective_repetition_penalty,
        )
        # Chunks, so finished samples are handed back (and saved) as the run goes.
        for start in range(0, len(requests), self.chunk_size):
            chunk = list(requests[start : start + self.chunk_size])
            outputs = self.llm.chat([openai_messages(r) for r in chunk], sampling, use_tqdm=False)
            for request, output in zip(chunk, outputs, strict=True):
                out = output.outputs[0]
                on_result(request, Completion(out.text, len(out.token_ids), out.finish_reason))

    def close(self) -> None:
        pass


class HFBackend:
    """transformers `generate` for small models (CPU or one GPU): batched, left-padded, explicit sampling."""

    name = "hf"

    def __init__(self, model: str, *, device: str | None = None, dtype: str = "auto", batch_size: int = 8):
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            self.processor = AutoProcessor.from_pretrained(model)
        except (OSError, ValueError) as exc:
            raise UserError(f"--model {model}: cannot load a processor/tokenizer ({exc})") from exc
        self.tokenizer = getattr(self.processor, "tokenizer", self.processor)
        self.tokenizer.padding_side = "left"
        self.is_multimodal = hasattr(self.processor, "image_processor")
        try:
            if self.is_multimodal:
                self.model = AutoModelForImageTextToText.from_pretrained(model, dtype=dtype)
            else:
                from transformers import AutoModelForCausalLM

                self.model = AutoModelForCausalLM.from_pretrained(model, dtype=dtype)
        except (OSError, ValueError) as exc:
            raise UserError(f"--model {model}: cannot load the model with transformers ({exc})") from exc
        self.model.to(self.device).eval()
        self.batch_size = batch_size
        gen = self.model.generation_config
        eos = gen.eos_token_id if gen.eos_token_id is not None else self.tokenizer.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos])
        self.pad_id = (
            self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else min(self.eos_ids)
        )

    def _chat_messages(self, request: GenerationRequest) -> list[dict[str, Any]]:
        if not self.is_multimodal:
            return [{"role": m["role"], "content": m["content"]} for m in request.messages]
        out = []
        left = len(request.images)
        for message in request.messages:
            parts = _split_placeholders(message["content"], left)
            left -= sum(1 for p in parts if p["type"] == "image")
            out.append({"role": message["role"], "content": parts})
        return out

    def generate(
        self, requests: Sequence[GenerationRequest], params: SamplingParams, on_result: OnResult
    ) -> None:
        import io

        import torch
        from PIL import Image
        from transformers import GenerationConfig

        if params.seed is not None:
            torch.manual_seed(params.seed)
        do_sample = params.temperature > 0
        # A fresh config: nothing from the model's generation_config.json leaks into sampling.
        config = GenerationConfig(
            do_sample=do_sample,
            temperature=params.temperature if do_sample else None,
            top_p=params.top_p if do_sample else None,
            top_k=max(params.effective_top_k, 0) if do_sample else None,
            repetition_penalty=params.effective_repetition_penalty,
            max_new_tokens=params.max_new_tokens,
            eos_token_id=sorted(self.eos_ids),
            pad_token_id=self.pad_id,
        )
        for start in range(0, len(requests), self.batch_size):
            batch = list(requests[start : start + self.batch_size])
            texts = [
                self.processor.apply_chat_template(
                    self._chat_messages(r), tokenize=False, add_generation_prompt=True
                )
                for r in batch
            ]
            images = [Image.open(io.BytesIO(b)).convert("RGB") for r in batch for b in r.images]
            if self.is_multimodal:
                inputs = self.processor(text=texts, images=images or None, padding=True, return_tensors="pt")
            else:
                inputs = self.tokenizer(texts, padding=True, return_tensors="pt")
            inputs = inputs.to(self.device)
            with torch.no_grad():
                out = self.model.generate(**inputs, generation_config=config)
            new_tokens = out[:, inputs["input_ids"].shape[1] :].tolist()
            for request, ids in zip(batch, new_tokens, strict=True):
                end = next((i for i, t in enumerate(ids) if t in self.eos_ids), None)
                if end is None:
                    kept, count, finish = ids, len(ids), "length"
                else:
                    kept, count, finish = ids[:end], end + 1, "stop"
                text = self.tokenizer.decode(kept, skip_special_tokens=True)
                on_result(request, Completion(text, count, finish))

    def close(self) -> None:
        del self.model


BACKENDS = ("openai", "vllm", "hf")


# The options each backend takes; `backend_options` keeps those of the chosen one.
BACKEND_OPTIONS = {
    "openai": ("served_model_name", "concurrency", "max_retries", "timeout_s"),
    "vllm": (
        "tensor_parallel_size",
        "gpu_memory_utilization",
        "max_model_len",
        "seed",
        "dtype",
        "enforce_eager",
        "skip_mm_profiling",
    ),
    "hf": ("batch_size", "device", "dtype"),
}


def choose_backend(model: str, backend: str = "auto") -> str:
    """`auto`: openai for a server URL, else vllm when installed, else hf; any other name is kept."""
    if backend != "auto":
        return backend
    if model.startswith(("http://", "https://")):
        return "openai"
    return "vllm" if importlib.util.find_spec("vllm") is not None else "hf"


def backend_options(kind: str, options: dict[str, Any]) -> dict[str, Any]:
    """The entries of `options` that backend `kind` takes (see BACKEND_OPTIONS)."""
    return {k: v for k, v in options.items() if k in BACKEND_OPTIONS.get(kind, ())}


def make_backend(kind: str, model: str, **options: Any) -> Backend:
    """Build a backend: `openai` (model = server URL; `served_model_name`, `concurrency`, ...),
    `vllm` (model = path or hub id), `hf` (model = path or hub id; `device`, `batch_size`)."""
    if kind == "openai":
        served = options.pop("served_model_name", None)
        return OpenAIBackend(base_url=model, model=served, **options)
    if kind == "vllm":
        return VLLMBackend(model, **options)
    if kind == "hf":
        return HFBackend(model, **options)
    raise UserError(f"unknown backend {kind!r}; choose one of {', '.join(BACKENDS)}")
