"""Pre-flight budget: prompt tokens (vision tokens included) per row, and GPU memory per device.

Vision-language RL runs fail in two ways a config check cannot see: a prompt whose image expands to
more tokens than `data.max_prompt_length` (dropped, or truncated into "image features and image
tokens do not match"), and out-of-memory from the actor's state plus the rollout engine's share.
`token_budget` reads the real training rows and counts each prompt with the model's tokenizer and
each image's vision tokens from its real size under the pixel bounds; `memory_budget` estimates the
per-GPU bytes of the actor's parameters, gradients, optimizer state, activations and logits, and
the rollout engine's share at `rollout.gpu_memory_utilization`, against the GPU memory found or given.
Both are estimates for a launch decision, not allocator traces: they err on the large side.
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlmrl.data.images import PROCESSOR_DEFAULTS, VisionSettings, family_vision_defaults, vision_settings
from vlmrl.data.prompt import prompt_text_tokens, with_vision_markers
from vlmrl.errors import UserError
from vlmrl.train.config import ExperimentConfig

GIB = 1024**3

# Published configs (config.json on the hub) per family and size, for hub ids that are not on this
# machine: the text model, and the vision tower (depth, width, MLP width, patch, DeepStack mergers).
KNOWN_ARCHS: dict[str, dict[str, dict[str, int | bool]]] = {
    "qwen2_5_vl": {
        "3b": dict(hidden=2048, layers=36, heads=16, kv_heads=2, intermediate=11008, vocab=151936, tied=True),
        "7b": dict(
            hidden=3584, layers=28, heads=28, kv_heads=4, intermediate=18944, vocab=152064, tied=False
        ),
        "32b": dict(
            hidden=5120, layers=64, heads=40, kv_heads=8, intermediate=27648, vocab=152064, tied=False
        ),
        "72b": dict(
            hidden=8192, layers=80, heads=64, kv_heads=8, intermediate=29568, vocab=152064, tied=False
        ),
    },
    "qwen3_vl": {  # Qwen3 text models: explicit head_dim 128
        "2b": dict(
            hidden=2048,
            layers=28,
            heads=16,
            kv_heads=8,
            head_dim=128,
            intermediate=6144,
            vocab=151936,
            tied=True,
        ),
        "4b": dict(
            hidden=2560,
            layers=36,
            heads=32,
            kv_heads=8,
            head_dim=128,
            intermediate=9728,
            vocab=151936,
            tied=True,
        ),
        "8b": dict(
            hidden=4096,
            layers=36,
            heads=32,
            kv_heads=8,
            head_dim=128,
            intermediate=12288,
            vocab=151936,
            tied=False,
        ),
        "32b": dict(
            hidden=5120,
            layers=64,
            heads=64,
            kv_heads=8,
            head_dim=128,
            intermediate=25600,
            vocab=151936,
            tied=False,
        ),
    },
}
_SMALL_QWEN3_VISION = dict(depth=24, hidden=1024, intermediate=4096, patch=16, deepstack=3)
_LARGE_QWEN3_VISION = dict(depth=27, hidden=1152, intermediate=4304, patch=16, deepstack=3)
KNOWN_VISION: dict[str, dict[str, dict[str, int]]] = {
    # Qwen2.5-VL: the same tower for every size
    "qwen2_5_vl": {
        size: dict(depth=32, hidden=1280, intermediate=3420, patch=14, deepstack=0)
        for size in KNOWN_ARCHS["qwen2_5_vl"]
    },
    "qwen3_vl": {
        "2b": _SMALL_QWEN3_VISION,
        "4b": _SMALL_QWEN3_VISION,
        "8b": _LARGE_QWEN3_VISION,
        "32b": _LARGE_QWEN3_VISION,
    },
}


# ---------------------------------------------------------------------------
# Tokens


@dataclass
class RowTokens:
    file: str
    row: int
    text: int  # chat-templated prompt without the vision tokens (one marker pair per image)
    vision: int

    @property
    def total(self) -> int:
        return self.text + self.vision


@dataclass
class TokenBudget:
    max_prompt_length: int
    filter_overlong: bool
    rows: list[RowTokens] = field(default_factory=list)
    rows_total: int = 0  # rows in the files (rows may be a sample of them)
    exact_text: bool = True  # False: no tokenizer on this machine, text tokens estimated from bytes
    pixels: tuple[int, int] = (PROCESSOR_DEFAULTS.min_pixels, PROCESSOR_DEFAULTS.max_pixels)
    #: How vision tokens are counted (the model's processor's pixel bounds, patch and merge sizes).
    vision: VisionSettings = PROCESSOR_DEFAULTS
    notes: list[str] = field(default_factory=list)

    @property
    def over(self) -> list[RowTokens]:
        return [r for r in self.rows if r.total > self.max_prompt_length]

    @property
    def over_by_vision(self) -> list[RowTokens]:
        """Rows whose text fits but whose images push them over: truncation would cut image tokens."""
        return [r for r in self.over if r.text <= self.max_prompt_length and r.vision > 0]

    def quantiles(self, which: str = "total") -> dict[str, int]:
        values = sorted(getattr(r, which) for r in self.rows)
        if not values:
            return {}

        def q(p: float) -> int:
            return values[min(len(values) - 1, math.ceil(p * len(values)) - 1 if p > 0 else 0)]

        return {"min": values[0], "p50": q(0.5), "p90": q(0.9), "p99": q(0.99), "max": values[-1]}

    def verdict(self) -> tuple[str, str]:
        """(status, message) for preflight: ok, warn (rows dropped) or fail (rows broken / all dropped)."""
        n, over, by_vision = len(self.rows), self.over, self.over_by_vision
        if not n:
            return "info", "no rows read"
        sample = "" if n == self.rows_total else f" (a sample of {n:,} of {self.rows_total:,} rows)"
        q = self.quantiles()
        head = f"prompt tokens p50 {q['p50']:,}, p99 {q['p99']:,}, max {q['max']:,} of {self.max_prompt_length:,}{sample}"
        if not over:
            return "ok", f"{head}; every row fits"
        share = f"{len(over):,} row(s) ({100 * len(over) / n:.1f}%) exceed data.max_prompt_length"
        vis = f", {len(by_vision):,} of them only because of their images' vision tokens" if by_vision else ""
        fix = "raise data.max_prompt_length" + (" or lower data.max_pixels" if by_vision else "")
        worst = max(over, key=lambda r: r.total)
        where = f"largest: {worst.file} row {worst.row}, {worst.total:,} tokens ({worst.vision:,} vision)"
        if not self.filter_overlong:
            return "fail", (
                f"{head}; {share}{vis} and would be truncated, cutting image tokens ('image features and "
                f"image tokens do not match'); {fix}, or set data.filter_overlong_prompts=true; {where}"
            )
        if len(over) == n:
            return "fail", f"{head}; every row exceeds data.max_prompt_length and would be dropped; {fix}"
        return (
            "warn",
            f"{head}; {share}{vis} and would be dropped (data.filter_overlong_prompts); {fix}; {where}",
        )


def _load_processor(model_path: str):
    """The model's processor from a local directory or the local hub cache (never the network)."""
    from transformers import AutoProcessor

    try:
        return AutoProcessor.from_pretrained(os.path.expanduser(model_path), local_files_only=True)
    except (OSError, ValueError, KeyError):
        return None


def token_budget(cfg: ExperimentConfig, max_rows: int = 2000, processor: Any = None) -> TokenBudget:
    """Count prompt tokens of (up to `max_rows`, evenly spread) training rows, vision tokens included."""
    from vlmrl.data.rows import open_parquet

    d = cfg.data
    if processor is None:
        processor = _load_processor(cfg.model.path)
    tokenizer = getattr(processor, "tokenizer", processor) if processor is not None else None
    # The processor's own settings (patch and merge sizes, pixel bounds); without one on this machine,
    # the published ones of the model's family (Qwen3-VL: 16-px patches, Qwen2.5-VL: 14); then
    # narrowed by the config's bounds.
    from vlmrl.tiny import model_family

    family = model_family(cfg.model.path)
    vision = vision_settings(processor, family_vision_defaults(family))
    vision = dataclasses.replace(
        vision, min_pixels=d.min_pixels or vision.min_pixels, max_pixels=d.max_pixels or vision.max_pixels
    )
    budget = TokenBudget(
        d.max_prompt_length,
        d.filter_overlong_prompts,
        pixels=(vision.min_pixels, vision.max_pixels),
        vision=vision,
    )
    if processor is None or getattr(processor, "image_processor", None) is None:
        budget.notes.append(
            f"{cfg.model.path}: no processor on this machine; vision tokens counted with the published "
            f"{family or 'qwen2_5_vl'} processor settings ({vision.patch}-px patches, merge {vision.merge})"
        )
    budget.exact_text = tokenizer is not None and getattr(tokenizer, "chat_template", None) is not None
    if not budget.exact_text:
        budget.notes.append(
            f"{cfg.model.path}: no tokenizer with a chat template on this machine; text tokens estimated "
            "as UTF-8 bytes / 3.5 (vision tokens are exact)"
        )
    files = [Path(f) for f in d.train_files if Path(f).is_file()]
    pfs = [(f, open_parquet(f, d.prompt_key, d.image_key)) for f in files]
    budget.rows_total = sum(pf.metadata.num_rows for _, pf in pfs)
    stride = max(1, math.ceil(budget.rows_total / max_rows)) if max_rows else 1
    for f, pf in pfs:
        columns = [d.prompt_key] + ([d.image_key] if d.image_key in pf.schema_arrow.names else [])
        index = 0
        for batch in pf.iter_batches(batch_size=256, columns=columns):
            for raw in batch.to_pylist():
                if index % stride == 0:
                    budget.rows.append(
                        _row_tokens(raw, d.prompt_key, d.image_key, str(f), index, tokenizer, budget, vision)
                    )
                index += 1
    return budget


def _row_tokens(raw, prompt_key, image_key, file, index, tokenizer, budget, vision) -> RowTokens:
    from PIL import Image

    messages = raw[prompt_key]
    n_vision = 0
    for k, image in enumerate(raw.get(image_key) or []):
        data = image.get("bytes") if isinstance(image, dict) else image
        if isinstance(data, (bytes, bytearray)):
            source: Any = io.BytesIO(data)
        else:
            source = (image.get("path") if isinstance(image, dict) else image) or ""
        try:
            with Image.open(source) as im:  # reads the header only
                width, height = im.size
        except (OSError, ValueError) as exc:
            raise UserError(
                f"{file} row {index}: image {k} is not a readable image ({exc}); rebuild the file with "
                "`vlmrl data build`"
            ) from None
        n_vision += vision.tokens(width, height)
    if budget.exact_text:
        n_text = prompt_text_tokens(tokenizer, messages)
    else:
        chat = [with_vision_markers(str(m["content"])) for m in messages]
        n_text = math.ceil(sum(len(c.encode()) for c in chat) / 3.5) + 5 * len(chat)
    return RowTokens(file, index, n_text, n_vision)


# ---------------------------------------------------------------------------
# Memory


@dataclass
class Arch:
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    tied: bool
    vision_params: int
    source: str
    explicit_head_dim: int | None = None  # Qwen3: head_dim is its own key (not hidden / heads)

    @property
    def head_dim(self) -> int:
        return self.explicit_head_dim or self.hidden // self.heads

    @property
    def params(self) -> int:
        h, q, kv = self.hidden, self.heads * self.head_dim, self.kv_heads * self.head_dim
        per_layer = h * q + 2 * h * kv + q * h + (q + 2 * kv) + 3 * h * self.intermediate + 2 * h
        embed = self.vocab * h * (1 if self.tied else 2)
        return self.layers * per_layer + embed + h + self.vision_params


def _vision_params(
    depth: int, hidden: int, intermediate: int, out_hidden: int, patch: int = 14, deepstack: int = 0
) -> int:
    """Vision tower parameters: blocks, patch embedding, the merger (and Qwen3-VL's DeepStack mergers)."""
    block = 4 * hidden * hidden + 4 * hidden + 3 * hidden * intermediate + 2 * hidden
    merged = 4 * hidden
    merger = merged * merged + merged * out_hidden
    return depth * block + 3 * 2 * patch * patch * hidden + (1 + deepstack) * merger


def model_arch(model_path: str) -> Arch | None:
    """Architecture from a local config.json, else from the published config of the family and size
    the name says (`Qwen/Qwen2.5-VL-7B-Instruct`, `Qwen/Qwen3-VL-8B-Instruct`)."""
    import json

    config_file = Path(os.path.expanduser(model_path)) / "config.json"
    if config_file.is_file():
        cfg = json.loads(config_file.read_text(encoding="utf-8"))
        text = cfg.get("text_config") or cfg
        if not all(
            k in text
            for k in (
                "hidden_size",
                "num_hidden_layers",
                "num_attention_heads",
                "intermediate_size",
                "vocab_size",
            )
        ):
            return None  # not a config this estimate can read: the architecture counts as unknown
        vision = cfg.get("vision_config") or {}
        vision_params = 0
        if vision:
            vision_params = _vision_params(
                vision.get("depth", 0),
                vision.get("hidden_size", 0),
                vision.get("intermediate_size", 0),
                vision.get("out_hidden_size", text["hidden_size"]),
                vision.get("patch_size", 14),
                len(vision.get("deepstack_visual_indexes") or []),
            )
        return Arch(
            hidden=text["hidden_size"],
            layers=text["num_hidden_layers"],
            heads=text["num_attention_heads"],
            kv_heads=text.get("num_key_value_heads", text["num_attention_heads"]),
            intermediate=text["intermediate_size"],
            vocab=text["vocab_size"],
            tied=bool(cfg.get("tie_word_embeddings", text.get("tie_word_embeddings", False))),
            vision_params=vision_params,
            source=str(config_file),
            explicit_head_dim=text.get("head_dim"),
        )
    from vlmrl.tiny import SUPPORTED, family_from_name

    family = family_from_name(model_path)
    m = re.search(r"(?i)-vl-(\d+)b", model_path)
    sizes = KNOWN_ARCHS.get(family or "", {})
    if m and f"{m.group(1)}b" in sizes:
        size = f"{m.group(1)}b"
        a, v = sizes[size], KNOWN_VISION[family][size]
        return Arch(
            **{k: int(a[k]) for k in ("hidden", "layers", "heads", "kv_heads", "intermediate", "vocab")},
            tied=bool(a["tied"]),
            vision_params=_vision_params(
                v["depth"], v["hidden"], v["intermediate"], int(a["hidden"]), v["patch"], v["deepstack"]
            ),
            source=f"published {SUPPORTED[family].label}-{size.upper()} config",
            explicit_head_dim=int(a["head_dim"]) if "head_dim" in a else None,
        )
    return None


@dataclass
class MemoryBudget:
    arch: Arch
    world: int
    gpu_gib: float | None  # None: no GPU found and none given
    gpu_source: str
    lines: dict[str, float]  # what -> GiB per GPU, in the update phase
    rollout_share_gib: float | None
    rollout_weights_gib: float
    resident_in_rollout_gib: float
    kv_tokens: int | None
    notes: list[str] = field(default_factory=list)

    @property
    def update_peak_gib(self) -> float:
        return sum(self.lines.values())

    def verdict(self) -> tuple[str, str]:
        peak = self.update_peak_gib
        head = f"{self.arch.params / 1e9:.2f}B parameters over {self.world} GPU(s): update phase ~{peak:.1f} GiB/GPU"
        if self.gpu_gib is None:
            return "info", f"{head}; no GPU here: pass --gpu-memory-gib to check it against a GPU size"
        m = self.gpu_gib
        problems = []
        if peak > m:
            problems.append(
                f"the update phase needs ~{peak:.1f} GiB of {m:.0f} GiB: set model.param_offload=true / "
                "model.optimizer_offload=true, model.gradient_checkpointing=true, lower "
                "algorithm.ppo_micro_batch_size_per_gpu, or use more GPUs (trainer.n_gpus_per_node)"
            )
        if self.rollout_share_gib is not None:
            free = m - self.rollout_share_gib
            if self.resident_in_rollout_gib > free:
                problems.append(
                    f"while vLLM holds rollout.gpu_memory_utilization of the GPU ({self.rollout_share_gib:.1f} "
                    f"GiB), the actor keeps ~{self.resident_in_rollout_gib:.1f} GiB resident but only "
                    f"{free:.1f} GiB is left: offload it (model.param_offload / model.optimizer_offload) or "
                    "lower rollout.gpu_memory_utilization"
                )
            if self.kv_tokens is not None and self.kv_tokens <= 0:
                problems.append(
                    f"vLLM's weights (~{self.rollout_weights_gib:.1f} GiB) leave no room for its KV cache in "
                    f"{self.rollout_share_gib:.1f} GiB: raise rollout.gpu_memory_utilization or "
                    "rollout.tensor_model_parallel_size"
                )
        where = f"{head} of {m:.0f} GiB ({self.gpu_source})"
        if problems:
            return "fail", f"{where}; " + "; ".join(problems)
        if peak > 0.9 * m:
            return "warn", f"{where}: within 10% of the limit; expect out-of-memory on long batches"
        return "ok", f"{where}: fits"


def local_gpu_gib() -> float | None:
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_properties(0).total_memory / GIB


def memory_budget(cfg: ExperimentConfig, gpu_memory_gib: float | None = None) -> MemoryBudget | None:
    """Per-GPU estimate of a GRPO step's memory for `cfg`; None when the architecture is unknown.

    Model: FSDP shards fp32 master weights, fp32 gradients and AdamW's two fp32 moments over every GPU;
    offloaded state lives on the CPU between phases (`optimizer_offload` keeps AdamW there, so it
    costs no GPU memory; `param_offload` frees weights and gradients while the rollout engine runs,
    but the update phase still holds them). Activations: one micro batch of
    (max_prompt_length + max_response_length) tokens per sequence: each layer's bf16 input
    (gradient checkpointing) plus one layer recomputed, or every layer's activations without it, plus
    fp32 logits and their gradient. Rollout: vLLM takes gpu_memory_utilization of the GPU: bf16 weights
    (split over tensor_model_parallel_size), the rest KV cache.
    """
    arch = model_arch(cfg.model.path)
    if arch is None:
        return None
    t, a, r = cfg.trainer, cfg.algorithm, cfg.rollout
    world = max(1, t.nnodes * max(t.n_gpus_per_node, 1))
    n = arch.params
    if cfg.model.lora_rank > 0:
        trainable = 2 * cfg.model.lora_rank * arch.hidden * 7 * arch.layers  # q,k,v,o,gate,up,down adapters
        weights = 2 * n / world  # frozen base weights in bf16
    else:
        trainable = n
        weights = 4 * n / world
    grads = 4 * trainable / world
    optim = 0.0 if cfg.model.optimizer_offload else 8 * trainable / world
    tokens = a.ppo_micro_batch_size_per_gpu * (cfg.data.max_prompt_length + r.max_response_length)
    h, inter = arch.hidden, arch.intermediate
    per_layer_full = tokens * 2 * (10 * h + 4 * inter)  # bf16: qkv, attention out, norms, residuals, MLP
    if cfg.model.gradient_checkpointing:
        acts = arch.layers * tokens * h * 2 + per_layer_full
    else:
        acts = arch.layers * per_layer_full
    logits = tokens * arch.vocab * 4 * 2  # fp32 logits for the log-probs, and their gradient
    lines = {
        "parameters": weights / GIB,
        "gradients": grads / GIB,
        "optimizer state" + (" (on CPU)" if cfg.model.optimizer_offload else ""): optim / GIB,
        "activations" + (" (checkpointed)" if cfg.model.gradient_checkpointing else ""): acts / GIB,
        "logits": logits / GIB,
        "CUDA context, allocator slack": 1.5,
    }
    gpu, source = gpu_memory_gib, "given"
    if gpu is None:
        gpu, source = local_gpu_gib(), "found on this machine"
    uses_engine = r.engine in ("vllm", "sglang") and (cfg.backend == "verl" or t.device != "cpu")
    share = r.gpu_memory_utilization * gpu if (uses_engine and gpu is not None) else None
    rollout_weights = 2 * n / max(1, r.tensor_model_parallel_size) / GIB
    resident = (0.0 if cfg.model.param_offload else weights / GIB) + optim / GIB
    kv_tokens = None
    if share is not None:
        kv_per_token = (
            2 * arch.layers * arch.kv_heads * arch.head_dim * 2 / max(1, r.tensor_model_parallel_size)
        )
        kv_tokens = int((share - rollout_weights - 1.0) * GIB / kv_per_token)
    budget = MemoryBudget(
        arch, world, gpu, source, lines, share, rollout_weights, resident if uses_engine else 0.0, kv_tokens
    )
    if kv_tokens is not None and kv_tokens > 0:
        seq = cfg.data.max_prompt_length + r.max_response_length
        budget.notes.append(
            f"vLLM KV cache ~{kv_tokens:,} tokens per GPU: ~{kv_tokens // seq:,} full-length sequences at once"
        )
    return budget


# ---------------------------------------------------------------------------
# Tables


def render_budget(tokens: TokenBudget | None, memory: MemoryBudget | None) -> str:
    """Plain-text tables (fixed width, never cut when piped) of both budgets."""
    out: list[str] = []
    if tokens is not None and tokens.rows:
        v = tokens.vision
        out.append(
            f"prompt tokens per row ({len(tokens.rows):,} of {tokens.rows_total:,} rows; pixels "
            f"{tokens.pixels[0]:,}..{tokens.pixels[1]:,}, {v.patch}-px patches merged {v.merge}x{v.merge}; "
            f"limit data.max_prompt_length={tokens.max_prompt_length:,})"
        )
        out.append(f"  {'':<8}{'min':>8}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>8}")
        for which in ("text", "vision", "total"):
            q = tokens.quantiles(which)
            out.append(f"  {which:<8}" + "".join(f"{q[k]:>8,}" for k in ("min", "p50", "p90", "p99", "max")))
        over, by_vision = tokens.over, tokens.over_by_vision
        action = "dropped" if tokens.filter_overlong else "truncated (broken)"
        out.append(
            f"  over the limit: {len(over):,} ({action}); only because of vision tokens: {len(by_vision):,}"
        )
        out += [f"  note: {n}" for n in tokens.notes]
    if memory is not None:
        gpu = "?" if memory.gpu_gib is None else f"{memory.gpu_gib:.0f}"
        out.append(
            f"GPU memory per GPU, update phase ({memory.arch.params / 1e9:.2f}B parameters, "
            f"{memory.world} GPU(s), {gpu} GiB each)"
        )
        for what, gib in memory.lines.items():
            out.append(f"  {what:<34}{gib:>8.1f} GiB")
        out.append(f"  {'total':<34}{memory.update_peak_gib:>8.1f} GiB")
        if memory.rollout_share_gib is not None:
            out.append(
                f"  rollout: vLLM share {memory.rollout_share_gib:.1f} GiB (weights {memory.rollout_weights_gib:.1f}), "
                f"actor resident meanwhile {memory.resident_in_rollout_gib:.1f} GiB"
            )
        out += [f"  note: {n}" for n in memory.notes]
    return "\n".join(out) + ("\n" if out else "")
