"""The build pipeline: examples -> checks -> images on all cores -> veRL parquet, with a rejects file.

`build_recipe` runs a whole recipe; `build_from_examples` writes any iterable of `Example`s (e.g.
synthesised ones) through the same checks and writer. Memory holds a chunk of rows, not a dataset.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import multiprocessing
import os
import random
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from vlmrl.data.decontam import Decontaminator, EvalIndex, dedup_key
from vlmrl.data.example import Example
from vlmrl.data.images import (
    ImageOptions,
    VisionSettings,
    blank_image,
    image_size,
    prepare_images,
    target_size,
    vision_settings,
)
from vlmrl.data.prompt import DEFAULT_INSTRUCTION, load_processor, placeholder_mismatch, prompt_text_tokens
from vlmrl.data.recipe import Recipe, load_recipe
from vlmrl.data.rows import example_to_row, row_from_example, row_schema
from vlmrl.data.sources import get_source, load_examples
from vlmrl.data.writer import ParquetChunkWriter
from vlmrl.errors import UserError
from vlmrl.utils.io import atomic_path

# Reasons a row is rejected (rejects file `reason`; contamination adds `:<eval set>`).
BAD_RECORD = "bad_record"  # the published record itself is broken (a missing field, not JSON)
EMPTY_QUESTION = "empty_question"
MISSING_GROUND_TRUTH = "missing_ground_truth"
PLACEHOLDER_MISMATCH = "image_placeholder_mismatch"
UNDECODABLE_IMAGE = "undecodable_image"
DUPLICATE = "duplicate"  # same question, images and ground truth as an earlier row
PROMPT_TOO_LONG = "prompt_too_long"
CONTAMINATED_EXACT = "contaminated_exact"
CONTAMINATED_NGRAM = "contaminated_ngram"

# Problems with a row itself, as opposed to filters (dedup, decontamination, length): `strict`
# turns these into an error instead of a reject.
ROW_PROBLEMS = (BAD_RECORD, EMPTY_QUESTION, MISSING_GROUND_TRUTH, PLACEHOLDER_MISMATCH, UNDECODABLE_IMAGE)

# Rows per shuffle bucket: a bucket is read back whole, so this bounds memory while shuffling.
BUCKET_ROWS = 1024


class Progress:
    """Hooks for a progress display; the default does nothing (library code never prints)."""

    def start(self, output: str, phase: str, total: int | None) -> None:  # pragma: no cover - hook
        pass

    def advance(self, n: int = 1) -> None:  # pragma: no cover - hook
        pass


@dataclass
class OutputReport:
    """What happened to one output file: rows in = kept + rejected (+ sampled out by limits/ratios)."""

    name: str
    path: str
    read: int = 0
    kept: int = 0
    rejected: Counter = field(default_factory=Counter)
    sampled_out: int = 0
    images: int = 0
    images_changed: int = 0
    kept_by_source: Counter = field(default_factory=Counter)
    # (training source, evaluation set) -> rows dropped as contaminated
    contamination: Counter = field(default_factory=Counter)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def balanced(self) -> bool:
        return self.read == self.kept + self.rejected_total + self.sampled_out


@dataclass
class BuildReport:
    outputs: list[OutputReport]
    rejects_path: str


class RejectsLog:
    """The rejects jsonl (source, index, reason, detail, output), written atomically at the end."""

    def __init__(self, path: str | os.PathLike[str] | None):
        self.path = Path(path) if path is not None else None
        self._stack = contextlib.ExitStack()
        self._fh = None
        self.count = 0

    def __enter__(self) -> RejectsLog:
        if self.path is not None:
            tmp = self._stack.enter_context(atomic_path(self.path))
            self._fh = self._stack.enter_context(tmp.open("w", encoding="utf-8"))
        return self

    def add(self, output: str, example: Example, reason: str, detail: str = "") -> None:
        self.count += 1
        if self._fh is not None:
            record = {
                "output": output,
                "source": example.source,
                "split": example.split,
                "index": example.index,
            }
            record.update(reason=reason, detail=detail, question=example.question[:200])
            self._fh.write(json.dumps(record, ensure_ascii=False) + "\n")

    def __exit__(self, *exc: Any) -> None:
        self._stack.__exit__(*exc)


class RowChecker:
    """Row-level checks before images are touched; holds the dedup set across one output."""

    def __init__(
        self,
        dedup: bool = True,
        decontaminator: Decontaminator | None = None,
        tokenizer: Any = None,
        max_prompt_length: int | None = None,
        instruction: str | None = DEFAULT_INSTRUCTION,
        image_options: ImageOptions = ImageOptions(),
        blank: bytes | None = None,
        strict: bool = False,
        vision: VisionSettings | None = None,
    ):
        self.strict = strict
        self.dedup = dedup
        self.seen: dict[str, str] = {}  # dedup key -> the first row's "source:index"
        self.decontaminator = decontaminator
        self.tokenizer = tokenizer
        self.max_prompt_length = max_prompt_length
        self.instruction = instruction
        self.image_options = image_options
        self.vision = vision or VisionSettings(image_options.min_pixels, image_options.max_pixels)
        self.blank = blank

    def check(self, ex: Example) -> tuple[str, str] | None:
        """(reason, detail) when the row must be rejected, else None (the row counts as seen).

        With `strict`, a problem with the row itself (`ROW_PROBLEMS`) raises a `UserError` instead."""
        bad = self._check(ex)
        if bad is not None and self.strict:
            strict_error(ex, *bad)
        return bad

    def _check(self, ex: Example) -> tuple[str, str] | None:
        if ex.problem:
            return BAD_RECORD, ex.problem
        if not ex.question.strip():
            return EMPTY_QUESTION, ""
        if not ex.answers:
            return MISSING_GROUND_TRUTH, "no non-empty ground truth after normalisation"
        mismatch = placeholder_mismatch(ex.question, len(ex.images))
        if mismatch:
            return PLACEHOLDER_MISMATCH, mismatch
        if self.decontaminator is not None:
            hit = self.decontaminator.match(ex.question)
            if hit is not None:
                reason = CONTAMINATED_EXACT if hit.kind == "exact" else CONTAMINATED_NGRAM
                how = "same text as" if hit.kind == "exact" else f"{hit.overlap:.0%} of its n-grams in"
                return f"{reason}:{hit.eval_name}", f"{how} {hit.eval_name} problem {hit.problem.describe()}"
        if self.dedup:
            key = dedup_key(ex)
            first = self.seen.get(key)
            if first is not None:
                return DUPLICATE, f"same question, images and ground truth as {first}"
            self.seen[key] = f"{ex.source}:{ex.index}"
        if self.tokenizer is not None and self.max_prompt_length:
            n = self.prompt_tokens(ex)
            if n is not None and n > self.max_prompt_length:
                return PROMPT_TOO_LONG, f"{n} tokens > {self.max_prompt_length}"
        return None

    def prompt_tokens(self, ex: Example) -> int | None:
        """Tokens of the row's chat-templated prompt plus the vision tokens each (resized) image will cost."""
        row = row_from_example(ex, instruction=self.instruction, blank_image=self.blank)
        total = prompt_text_tokens(self.tokenizer, row.prompt)
        for data in row.images:
            try:
                w, h = target_size(*image_size(data), self.image_options)
            except Exception:
                return None  # undecodable: the image stage rejects it with the real reason
            total += self.vision.tokens(w, h)
        return total


def strict_error(ex: Example, reason: str, detail: str) -> None:
    """Raise for a row problem under `strict` (filters such as dedup never raise)."""
    if reason in ROW_PROBLEMS:
        raise UserError(
            f"{ex.source} {ex.split} row {ex.index}: {reason}"
            + (f" ({detail})" if detail else "")
            + "; strict mode stops here: fix the row, or build without --strict to reject it and go on"
        )


def _worker_count(workers: int) -> int:
    return workers if workers > 0 else (os.cpu_count() or 1)


@contextlib.contextmanager
def _image_pool(workers: int) -> Iterator[Any]:
    """A process pool for images, or None for in-process work (workers == 1)."""
    n = _worker_count(workers)
    if n <= 1:
        yield None
        return
    # spawn: the parent holds pyarrow threads, which fork would copy mid-flight.
    pool = multiprocessing.get_context("spawn").Pool(n)
    try:
        yield pool
    finally:
        pool.terminate()
        pool.join()


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _prepared_chunks(
    items: Iterable[tuple[Example, Any]], pool: Any, opts: ImageOptions, chunk_rows: int, workers: int
) -> Iterator[list[tuple[Example, Any, list | None, str | None]]]:
    """(example, tag, prepared images | None, error) per row, chunk by chunk, one chunk in flight ahead."""
    work = functools.partial(prepare_images, opts=opts)

    def submit(chunk: list[tuple[Example, Any]]):
        payload = [ex.images for ex, _ in chunk]
        if pool is None:
            return chunk, [work(p) for p in payload]
        return chunk, pool.map_async(work, payload, chunksize=max(1, len(payload) // (4 * workers)))

    pending = None
    for chunk in _chunks(items, chunk_rows):
        submitted = submit(chunk)
        if pending is not None:
            yield _collect(pending)
        pending = submitted
    if pending is not None:
        yield _collect(pending)


def _collect(pending) -> list[tuple[Example, Any, list | None, str | None]]:
    chunk, results = pending
    results = results if isinstance(results, list) else results.get()
    return [(ex, tag, prepared, err) for (ex, tag), (prepared, err) in zip(chunk, results, strict=True)]


class _OrderedSink:
    """Writes rows in the order of a permutation with flat memory: scatter into buckets, then sort each."""

    def __init__(self, final: ParquetChunkWriter, n_rows: int, schema, chunk_rows: int):
        self.final = final
        self.schema = schema
        self.n_buckets = max(1, math.ceil(n_rows / BUCKET_ROWS))
        self._tmpdir = tempfile.TemporaryDirectory(prefix=".vlmrl-shuffle-", dir=final.path.parent)
        order_schema = schema.append(pa.field("_order", pa.int64()))
        # All buckets together buffer about one chunk, and are left uncompressed (no codec state per
        # open bucket), so memory does not grow with the number of buckets, i.e. with the dataset.
        buffer_rows = max(4, chunk_rows // self.n_buckets)
        self._buckets = [
            ParquetChunkWriter(
                Path(self._tmpdir.name) / f"b{i}.parquet", order_schema, buffer_rows, compression=None
            ).__enter__()
            for i in range(self.n_buckets)
        ]

    def add(self, row: dict[str, Any], order: int) -> None:
        row["_order"] = order
        self._buckets[min(order // BUCKET_ROWS, self.n_buckets - 1)].add(row)

    def finish(self) -> None:
        try:
            for bucket in self._buckets:
                bucket.__exit__(None, None, None)
            for bucket in self._buckets:
                table = pq.read_table(bucket.path)
                order = pc.sort_indices(table.column("_order"))
                table = table.drop_columns(["_order"])
                step = self.final.chunk_rows
                # Slices of the sorted order: never a second full copy of the bucket in memory.
                for start in range(0, len(order), step):
                    self.final.write_table(table.take(order[start : start + step]))
                del table, order
        finally:
            self._tmpdir.cleanup()

    def abort(self) -> None:
        for bucket in self._buckets:
            with contextlib.suppress(Exception):
                bucket.__exit__(RuntimeError, RuntimeError("aborted"), None)
        self._tmpdir.cleanup()


def _write_rows(
    items: Iterable[tuple[Example, int | None]],
    report: OutputReport,
    out_path: Path,
    *,
    with_images: bool,
    blank: bytes | None,
    instruction: str | None,
    image_options: ImageOptions,
    pool: Any,
    workers: int,
    chunk_rows: int,
    rejects: RejectsLog,
    n_ordered: int | None = None,
    progress: Progress | None = None,
    strict: bool = False,
    split: str | None = None,
) -> None:
    """Prepare images and write rows; a tag that is an int is the row's position in the shuffled file.

    `split` relabels `extra_info.split`; `strict` makes an undecodable image an error."""
    schema = row_schema(with_images)
    with ParquetChunkWriter(out_path, schema, chunk_rows) as writer:
        sink = _OrderedSink(writer, n_ordered, schema, chunk_rows) if n_ordered else None
        try:
            for chunk in _prepared_chunks(items, pool, image_options, chunk_rows, _worker_count(workers)):
                for ex, order, prepared, err in chunk:
                    if err is not None:
                        if strict:
                            strict_error(ex, UNDECODABLE_IMAGE, err)
                        report.rejected[UNDECODABLE_IMAGE] += 1
                        rejects.add(report.name, ex, UNDECODABLE_IMAGE, err)
                        continue
                    if split and ex.split != split:
                        ex = dataclasses.replace(ex, split=split)
                    row = example_to_row(
                        ex,
                        images=[p.data for p in prepared],
                        instruction=instruction,
                        blank_image=blank if with_images else None,
                        with_images=with_images,
                    )
                    report.kept += 1
                    report.kept_by_source[ex.source] += 1
                    report.images += len(prepared)
                    report.images_changed += sum(p.changed for p in prepared)
                    if sink is not None:
                        sink.add(row, order)
                    else:
                        writer.add(row)
                if progress is not None:
                    progress.advance(len(chunk))
            if sink is not None:
                sink.finish()
        except BaseException:
            if sink is not None:
                sink.abort()
            raise


def build_from_examples(
    examples: Iterable[Example],
    out_path: str | os.PathLike[str],
    *,
    instruction: str | None = DEFAULT_INSTRUCTION,
    with_images: bool | None = None,
    mixed_policy: str = "blank",
    image_options: ImageOptions = ImageOptions(),
    blank_image_size: int = 28,
    dedup: bool = False,
    decontaminate_against: dict[str, Iterable[str]] | None = None,
    ngram: int = 8,
    threshold: float = 0.5,
    workers: int = 1,
    chunk_rows: int = 256,
    rejects_path: str | os.PathLike[str] | None = None,
    name: str = "output",
    progress: Progress | None = None,
) -> OutputReport:
    """Check, prepare and write `examples` (in order) to `out_path` as a veRL parquet file.

    `with_images`: whether the file has an `images` column (None: decide from the first example,
    so pass it explicitly when examples are mixed). `mixed_policy` says what text rows get in a file
    with images: `blank` (one blank image) or `native` (`[]`). `decontaminate_against` maps an
    evaluation set's name to its questions. Rejects go to `rejects_path` (jsonl) when given and
    are always counted in the returned report.
    """
    if mixed_policy not in ("blank", "native"):
        raise UserError(f"mixed_policy must be 'blank' or 'native', got {mixed_policy!r}")
    iterator = iter(examples)
    first = next(iterator, None)
    if with_images is None:
        with_images = bool(first is not None and first.images)
    head = [first] if first is not None else []
    decontaminator = None
    if decontaminate_against:
        indexes = [EvalIndex(n, qs, ngram) for n, qs in decontaminate_against.items()]
        decontaminator = Decontaminator(indexes, threshold)
    blank = blank_image(blank_image_size) if (with_images and mixed_policy == "blank") else None
    checker = RowChecker(dedup=dedup, decontaminator=decontaminator, instruction=instruction, blank=blank)
    report = OutputReport(name=name, path=str(out_path))

    def checked() -> Iterator[tuple[Example, None]]:
        for ex in _chain(head, iterator):
            report.read += 1
            if ex.images and not with_images:
                raise UserError(
                    f"{name}: example {ex.source}:{ex.index} has {len(ex.images)} image(s) but {out_path} is "
                    "being written without an images column (decided from the first example, which has "
                    "none); pass with_images=True for mixed text + image examples"
                )
            bad = checker.check(ex)
            if bad is not None:
                _reject(report, rejects, ex, *bad)
                continue
            yield ex, None

    with RejectsLog(rejects_path) as rejects, _image_pool(workers) as pool:
        _write_rows(
            checked(),
            report,
            Path(out_path),
            with_images=with_images,
            blank=blank,
            instruction=instruction,
            image_options=image_options,
            pool=pool,
            workers=workers,
            chunk_rows=chunk_rows,
            rejects=rejects,
            progress=progress,
        )
    return report


def _chain(first: list[Example], rest: Iterator[Example]) -> Iterator[Example]:
    yield from first
    yield from rest


def _reject(report: OutputReport, rejects: RejectsLog, ex: Example, reason: str, detail: str) -> None:
    report.rejected[reason] += 1
    if reason.startswith(("contaminated_",)):
        report.contamination[(ex.source, reason.split(":", 1)[1])] += 1
    rejects.add(report.name, ex, reason, detail)


def _source_examples(recipe: Recipe, name: str) -> Iterator[Example]:
    spec = recipe.sources[name]
    return load_examples(spec.source, path=spec.path, split=spec.split, **spec.options)


def _is_multimodal(recipe: Recipe, name: str) -> bool:
    spec = recipe.sources[name]
    if spec.source == "generic":
        return bool(spec.options.get("image_key"))
    return get_source(spec.source).multimodal


def _select(
    recipe: Recipe, out_name: str, kept: dict[str, list[int]], report: OutputReport
) -> dict[tuple[str, int], int | None]:
    """Apply per-source limits and the mix ratio (seeded), then the seeded shuffle: key -> position."""
    out = recipe.outputs[out_name]
    rng = random.Random(f"{recipe.seed}:{out_name}")
    chosen: dict[str, list[int]] = {}
    for name, indices in kept.items():
        limit = recipe.sources[name].limit
        chosen[name] = sorted(rng.sample(indices, limit)) if limit and len(indices) > limit else indices
    if out.mix_ratio:
        ratio = {n: out.mix_ratio.get(n, 0.0) for n in chosen}
        total_ratio = sum(ratio.values())
        if total_ratio <= 0:
            raise UserError(f"outputs.{out_name}.mix_ratio: shares must add up to more than 0")
        shares = {n: r / total_ratio for n, r in ratio.items()}
        # The largest file whose every share is available.
        total = min((len(chosen[n]) / s for n, s in shares.items() if s > 0), default=0)
        for n, s in shares.items():
            want = int(math.floor(total * s + 1e-9))
            if len(chosen[n]) > want:
                chosen[n] = sorted(rng.sample(chosen[n], want))
    report.sampled_out = sum(len(kept[n]) - len(chosen[n]) for n in kept)
    keys = [(n, i) for n, idx in chosen.items() for i in idx]
    if out.shuffle:
        order = list(range(len(keys)))
        rng.shuffle(order)
        return dict(zip(keys, order, strict=True))
    return dict.fromkeys(keys)


def build_recipe(
    recipe: Recipe | str | os.PathLike[str],
    overrides: list[str] | tuple[str, ...] = (),
    source_paths: dict[str, str] | None = None,
    progress: Progress | None = None,
    only: list[str] | None = None,
) -> BuildReport:
    """Build every output of a recipe (or those named in `only`); returns per-output reports.

    Each output is read twice when it shuffles, limits or mixes (first the row checks, then images
    and writing for the chosen rows), so memory never holds more than a chunk and the shuffle buckets.
    """
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe, overrides, source_paths)
    image_options = recipe.images.options()
    processor, tokenizer = (
        load_processor(recipe.tokenizer) if recipe.tokenizer and recipe.max_prompt_length else (None, None)
    )
    # Vision tokens as the model's processor counts them; without one, in the bounds images are resized into.
    vision = vision_settings(processor, VisionSettings(image_options.min_pixels, image_options.max_pixels))
    indexes = []
    for name in recipe.decontamination.against:
        questions = (ex.question for ex in _source_examples(recipe, name))
        indexes.append(EvalIndex(name, questions, recipe.decontamination.ngram))
    decontaminator = Decontaminator(indexes, recipe.decontamination.threshold) if indexes else None
    names = only or list(recipe.outputs)
    for n in names:
        if n not in recipe.outputs:
            raise UserError(f"no output {n!r} in the recipe (outputs: {', '.join(recipe.outputs)})")
    reports = []
    with RejectsLog(recipe.rejects_path()) as rejects, _image_pool(recipe.workers) as pool:
        for out_name in names:
            out = recipe.outputs[out_name]
            with_images = any(_is_multimodal(recipe, s) for s in out.sources)
            blank = (
                blank_image(recipe.blank_image_size) if with_images and out.mixed_policy == "blank" else None
            )
            own_evals = set(out.sources) & set(recipe.decontamination.against)
            checker = RowChecker(
                dedup=out.dedup,
                decontaminator=decontaminator if (out.decontaminate and not own_evals) else None,
                tokenizer=tokenizer,
                max_prompt_length=recipe.max_prompt_length,
                instruction=recipe.instruction,
                image_options=image_options,
                vision=vision,
                blank=blank,
                strict=recipe.strict,
            )
            report = OutputReport(name=out_name, path=out.path)
            two_pass = out.shuffle or out.mix_ratio or any(recipe.sources[s].limit for s in out.sources)

            def checked(sources: list[str], report=report, checker=checker) -> Iterator[tuple[str, Example]]:
                for name in sources:
                    for ex in _source_examples(recipe, name):
                        report.read += 1
                        bad = checker.check(ex)
                        if bad is not None:
                            _reject(report, rejects, ex, *bad)
                            continue
                        yield name, ex

            if two_pass:
                if progress is not None:
                    progress.start(out_name, "checking rows", None)
                kept: dict[str, list[int]] = {s: [] for s in out.sources}
                for name, ex in checked(out.sources):
                    kept[name].append(ex.index)
                    if progress is not None:
                        progress.advance()
                selection = _select(recipe, out_name, kept, report)
                n_ordered = len(selection) if out.shuffle else None

                def items(selection=selection, out=out) -> Iterator[tuple[Example, int | None]]:
                    for name in out.sources:
                        for ex in _source_examples(recipe, name):
                            key = (name, ex.index)
                            if key in selection:
                                yield ex, selection[key]

                total: int | None = len(selection)
            else:
                n_ordered = None
                total = None

                def items(out=out) -> Iterator[tuple[Example, None]]:
                    for _, ex in checked(out.sources):
                        yield ex, None

            if progress is not None:
                progress.start(out_name, "images and writing", total)
            _write_rows(
                items(),
                report,
                Path(out.path),
                with_images=with_images,
                blank=blank,
                instruction=recipe.instruction,
                image_options=image_options,
                pool=pool,
                workers=recipe.workers,
                chunk_rows=recipe.chunk_rows,
                rejects=rejects,
                n_ordered=n_ordered or None,
                progress=progress,
                strict=recipe.strict,
                split=out.split,
            )
            reports.append(report)
    return BuildReport(outputs=reports, rejects_path=str(recipe.rejects_path()))
