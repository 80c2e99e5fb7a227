"""Benchmark `vlmrl data build` on synthetic MMK12-like rows: rows/s against the image-work bound, peak RSS.

    PYTHONPATH=src python bench/data_build.py                 # 5,000 and 20,000 rows, all cores
    PYTHONPATH=src python bench/data_build.py --rows 2000 --workers 2

For each size it writes an MMK12-layout parquet (varied image sizes, modes and formats), then in fresh
subprocesses measures (1) the bound: only decode + resize + encode of those images (`prepare_image`,
the same per-image work, same worker pool, no parquet, no checks) and (2) the full build of the
multimodal recipe (checks, dedup, shuffle, images, parquet). Peak RSS is the build process's own
(ru_maxrss) plus the largest image worker's.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageDraw

# (width, height, mode, format): small figures, typical ones, big scans that must shrink.
# Mostly small K-12 figures as in MMK12; one in eight needs a resize, three in eight a mode change.
SHAPES = [
    (320, 240, "RGB", "PNG"),
    (480, 360, "RGB", "JPEG"),
    (600, 400, "P", "PNG"),  # palette: converted
    (400, 300, "RGBA", "PNG"),  # transparency: composed on white
    (800, 600, "RGB", "PNG"),
    (1600, 1200, "RGB", "JPEG"),  # 1.92 MP > max_pixels: resized
    (300, 200, "L", "PNG"),  # greyscale: converted
    (60, 40, "RGB", "PNG"),  # below min_pixels: scaled up
]


def _image(i: int) -> bytes:
    w, h, mode, fmt = SHAPES[i % len(SHAPES)]
    rng = random.Random(i)
    img = Image.new("RGB", (w, h), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    for _ in range(30):  # a diagram: lines and shapes on white, as in K-12 figures
        x0, y0 = rng.randrange(w), rng.randrange(h)
        x1, y1 = rng.randrange(w), rng.randrange(h)
        color = tuple(rng.randrange(256) for _ in range(3))
        draw.line((x0, y0, x1, y1), fill=color, width=rng.randint(1, 4))
        draw.ellipse((min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)), outline=color)
    img = img.convert(mode) if mode != "RGB" else img
    out = io.BytesIO()
    img.save(out, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return out.getvalue()


def write_synthetic_mmk12(path: Path, rows: int, distinct_images: int = 96) -> None:
    """MMK12 layout (id, subject, question, image{bytes,path}, answer); images repeat, questions do not."""
    images = [_image(i) for i in range(distinct_images)]
    writer = pq.ParquetWriter(
        path,
        pa.schema(
            [
                ("id", pa.string()),
                ("subject", pa.string()),
                ("question", pa.string()),
                ("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
                ("answer", pa.string()),
            ]
        ),
    )
    batch = []
    for i in range(rows):
        batch.append(
            {
                "id": f"syn-{i}",
                "subject": "math",
                "question": f"In the figure, the segment AB of problem {i} has length {i % 97 + 3}. Find the area.",
                "image": {"bytes": images[i % distinct_images], "path": None},
                "answer": f"$${i % 97 + 3}\\sqrt{{2}}$$",
            }
        )
        if len(batch) == 512:
            writer.write_table(pa.Table.from_pylist(batch, schema=writer.schema))
            batch = []
    if batch:
        writer.write_table(pa.Table.from_pylist(batch, schema=writer.schema))
    writer.close()


def _peak_rss_mb() -> tuple[float, float]:
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return self_kb / 1024, children_kb / 1024


def child_bound(src: str, workers: int) -> dict:
    import functools
    import multiprocessing

    from vlmrl.data.images import ImageOptions, prepare_image

    pf = pq.ParquetFile(src)
    work = functools.partial(prepare_image, opts=ImageOptions())
    n = 0
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        pool.map(abs, range(workers))  # workers up before the clock starts
        start = time.perf_counter()
        pending = None
        for batch in pf.iter_batches(batch_size=256, columns=["image"]):
            images = [r["bytes"] for r in batch.column("image").to_pylist()]
            submitted = pool.map_async(work, images, chunksize=max(1, len(images) // (4 * workers)))
            if pending is not None:
                pending.get()
            pending = submitted
            n += len(images)
        if pending is not None:
            pending.get()
        elapsed = time.perf_counter() - start
    return {"rows": n, "seconds": elapsed, "rows_per_s": n / elapsed}


def child_build(src: str, out_dir: str, workers: int) -> dict:
    from vlmrl.data.build import build_recipe
    from vlmrl.data.recipe import load_recipe

    recipe = load_recipe(
        data={
            "workers": workers,
            "rejects": f"{out_dir}/rejects.jsonl",
            "sources": {"mmk12": {"source": "mmk12", "path": src}},
            "outputs": {"train": {"path": f"{out_dir}/train.parquet", "sources": ["mmk12"]}},
        }
    )
    start = time.perf_counter()
    (report,) = build_recipe(recipe).outputs
    elapsed = time.perf_counter() - start
    self_mb, workers_mb = _peak_rss_mb()
    return {
        "rows": report.kept,
        "rejected": report.rejected_total,
        "seconds": elapsed,
        "rows_per_s": report.kept / elapsed,
        "peak_rss_mb": self_mb,
        "peak_worker_rss_mb": workers_mb,
        "images_changed": report.images_changed,
    }


def _run_child(kind: str, *args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", kind, *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"{kind} child failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[5000, 20000], help="Dataset sizes to build.")
    parser.add_argument("--workers", type=int, default=0, help="Image worker processes; 0 = all cores.")
    parser.add_argument(
        "--skip-bound", action="store_true", help="Only the full build (peak RSS vs rows); no rows/s bound."
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        result = (
            child_bound(rest[0], int(rest[1]))
            if kind == "bound"
            else child_build(rest[0], rest[1], int(rest[2]))
        )
        print(json.dumps(result))
        return
    workers = args.workers or os.cpu_count() or 1
    print(f"cores: {os.cpu_count()}, image workers: {workers}, load average: {os.getloadavg()[0]:.2f}")
    header = f"{'rows':>7} {'bound rows/s':>13} {'build rows/s':>13} {'ratio':>6} {'peak RSS MB':>12} {'worker RSS MB':>14} {'build s':>8}"
    print(header)
    with tempfile.TemporaryDirectory(prefix="vlmrl-bench-") as tmp:
        for n in args.rows:
            src = Path(tmp) / f"mmk12-{n}.parquet"
            write_synthetic_mmk12(src, n)
            bound = (
                {"rows_per_s": float("nan")}
                if args.skip_bound
                else _run_child("bound", str(src), str(workers))
            )
            build = _run_child("build", str(src), str(Path(tmp) / f"out-{n}"), str(workers))
            ratio = build["rows_per_s"] / bound["rows_per_s"]
            print(
                f"{n:>7} {bound['rows_per_s']:>13.1f} {build['rows_per_s']:>13.1f} {ratio:>6.2f} "
                f"{build['peak_rss_mb']:>12.0f} {build['peak_worker_rss_mb']:>14.0f} {build['seconds']:>8.1f}",
                flush=True,
            )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
