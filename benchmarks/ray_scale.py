"""Images per minute of inversions on Ray workers (``arpo.api.ray_pool.run_on_ray``) against
the same work in this process.

The work is what a batch does for each image: one normal run (``arpo.api.reverse_prompt``)
with the run defaults a user gets (32 renders per image) unless ``--budget`` says otherwise,
on the demo preset (offline, CPU), over the held-out demo scenes of ``demo:N`` written as PNG
files. Every row gets a fresh data folder (nothing cached from another row) and every worker
one torch thread (``--threads``).

    python benchmarks/ray_scale.py [--images 40] [--budget R] [--threads 1]
        [--rows in-process,ray-1,ray-2]

Rows, in the order given: ``in-process`` (one Toolbox here, the images one after another) and
``ray-N`` (a local Ray instance with N CPUs, N actors of ``--threads`` CPUs each); on a
machine whose load changes, run the rows twice in opposite orders. Columns: start (Ray's start,
then the models' load until every worker is ready; the in-process load), batch (from the
first worker ready to the last result), images/minute over that batch time, seconds per
image. Then the ratio of each Ray row to in-process and of the largest to the smallest Ray
row.
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@dataclass(frozen=True)
class Row:
    backend: str
    workers: int
    threads: int
    images: int
    start_s: float
    batch_s: float
    note: str = ""

    @property
    def per_minute(self) -> float:
        return 60.0 * self.images / self.batch_s


def invert(path: str, toolbox: object) -> tuple[str, float]:
    """The work for one image: a normal run; its best prompt and text score."""
    from arpo.api import reverse_prompt

    budget = int(os.environ.get("ARPO_BENCH_BUDGET", "0")) or None
    result = reverse_prompt(path, toolbox=toolbox, budget=budget)
    return result.best_prompt, result.best_text_score


def write_scenes(count: int, folder: Path) -> list[str]:
    """The first ``count`` held-out demo scenes (the bench's ``demo:N``) as PNG files."""
    from arpo.bench.dataset import demo_dataset

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for image in demo_dataset(f"demo:{count}").images:
        image.load().save(folder / f"{image.name}.png")
        paths.append(str(folder / f"{image.name}.png"))
    return paths


def in_process(paths: list[str], home: Path, threads: int) -> Row:
    from arpo.config import Settings
    from arpo.tools.toolbox import Toolbox

    began = time.perf_counter()
    toolbox = Toolbox(Settings(home=home, preset="demo", threads=threads))
    toolbox.load_models()
    toolbox.embed_vocabulary()
    loaded = time.perf_counter()
    for path in paths:
        invert(path, toolbox)
    return Row("in-process", 1, threads, len(paths), loaded - began, time.perf_counter() - loaded)


def on_ray(paths: list[str], home: Path, threads: int, workers: int) -> Row:
    import ray

    from arpo.api.ray_pool import run_on_ray
    from arpo.config import Settings

    began = time.perf_counter()
    ray.init(num_cpus=workers * threads, include_dashboard=False, address="local")
    ready: list[float] = []
    finished: list[float] = []
    try:
        summary = run_on_ray(
            paths,
            invert,
            lambda path, result: finished.append(time.perf_counter()),
            settings=Settings(home=home, preset="demo", device="cpu"),
            workers=workers,
            cpus_per_worker=threads,
            on_worker=lambda info: ready.append(time.perf_counter()),
        )
    finally:
        ray.shutdown()
    note = f"{summary.deaths} worker deaths" if summary.deaths else ""
    start = max(ready) - began
    batch = finished[-1] - min(ready)
    return Row(f"ray-{workers}", workers, threads, len(finished), start, batch, note)


def print_table(rows: list[Row]) -> None:
    print("| backend | workers | threads/worker | images | start s | batch s | images/min | "
          "s/image | note |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print(
            f"| {row.backend} | {row.workers} | {row.threads} | {row.images} | "
            f"{row.start_s:.1f} | {row.batch_s:.1f} | {row.per_minute:.1f} | "
            f"{row.batch_s / row.images:.2f} | {row.note} |"
        )
    base = next((r for r in rows if r.backend == "in-process"), None)
    rays = [r for r in rows if r.backend.startswith("ray-")]
    for row in rays:
        if base is not None:
            print(f"{row.backend} / in-process: {row.per_minute / base.per_minute:.2f}x")
    if len(rays) > 1:
        low, high = min(rays, key=lambda r: r.workers), max(rays, key=lambda r: r.workers)
        print(f"{high.backend} / {low.backend}: {high.per_minute / low.per_minute:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=40, help="demo scenes (demo:N)")
    parser.add_argument(
        "--budget", type=int, default=None, help="renders per image (default: a run's, 32)"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    parser.add_argument(
        "--rows",
        default="in-process,ray-1,ray-2",
        help="comma-separated, in the order run: in-process and ray-N (N workers)",
    )
    args = parser.parse_args()
    names = [name.strip() for name in args.rows.split(",") if name.strip()]
    bad = [n for n in names if n != "in-process" and not re.fullmatch(r"ray-[1-9][0-9]*", n)]
    if bad:
        parser.error(f"unknown row(s) {', '.join(bad)}; give in-process or ray-N")
    if args.budget:
        os.environ["ARPO_BENCH_BUDGET"] = str(args.budget)  # the workers inherit it
    with tempfile.TemporaryDirectory(prefix="arpo-ray-scale-") as scratch:
        work = Path(scratch)
        paths = write_scenes(args.images, work / "scenes")
        print(f"demo:{len(paths)} on the demo preset, budget {args.budget or 'default (32)'}, "
              f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")  # fmt: skip
        rows = []
        for i, name in enumerate(names):
            home = work / f"home-{i}"
            if name == "in-process":
                rows.append(in_process(paths, home, args.threads))
            else:
                rows.append(on_ray(paths, home, args.threads, int(name.removeprefix("ray-"))))
    print_table(rows)


if __name__ == "__main__":
    main()
