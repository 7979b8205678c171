"""Images per minute of a batch over a folder (``arpo invert FOLDER``), per backend.

Writes the held-out demo scenes of ``demo:N`` (the bench's dataset, what ``arpo bench demo:N``
inverts) into a folder as PNG files, then inverts the folder with each backend, on the demo
preset (offline, CPU) with the run defaults a user gets (32 renders per image) unless
``--budget`` says otherwise. Each backend gets a fresh data folder and a fresh copy of the
images (no caption files yet), so nothing is cached from another row.

    python benchmarks/batch_scale.py [--images 40] [--budget R] [--threads 1]
        [--backends in-process]

Prints a row per backend: images, workers, threads per worker, model load, wall time of the
batch (load excluded), images per minute, and mean seconds per image; then each backend's
ratio to in-process with one worker, and Ray's 2 workers to its 1. Backends that cannot run
here (their package missing) print a row saying why. The rows run in the order given: on a
machine whose load changes, run them twice in opposite orders.

Room for more backends: add a function to :data:`BACKENDS` that takes a :class:`Setup` and
returns a :class:`Row` (see :func:`in_process`); the table, ratios and notes follow.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@dataclass(frozen=True)
class Setup:
    images: Path  # the demo scenes, PNG; each backend copies them
    work: Path  # a scratch folder for each backend's data folder and copy
    budget: int | None
    threads: int


@dataclass(frozen=True)
class Row:
    backend: str
    workers: int
    threads: int
    images: int
    load_s: float | None
    wall_s: float | None
    finished: int
    note: str = ""

    @property
    def per_minute(self) -> float | None:
        if not self.wall_s or not self.finished:
            return None
        return 60.0 * self.finished / self.wall_s


def write_scenes(count: int, folder: Path) -> int:
    """The first ``count`` held-out demo scenes (the bench's ``demo:N``) as PNG files."""
    from arpo.bench.dataset import demo_dataset

    folder.mkdir(parents=True, exist_ok=True)
    images = demo_dataset(f"demo:{count}").images
    for image in images:
        image.load().save(folder / f"{image.name}.png")
    return len(images)


def fresh_copy(setup: Setup, name: str) -> tuple[Path, Path]:
    """A copy of the images and an empty data folder for one backend."""
    root = setup.work / name
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(setup.images, root / "images")
    (root / "home").mkdir()
    return root / "images", root / "home"


def in_process(setup: Setup) -> Row:
    """``arpo.api.invert_folder`` in this process: one worker, the models loaded once."""
    from arpo import api
    from arpo.config import Settings
    from arpo.tools.toolbox import Toolbox

    images, home = fresh_copy(setup, "in-process")
    toolbox = Toolbox(Settings(home=home, preset="demo", threads=setup.threads))
    started = time.perf_counter()
    toolbox.load_models()
    toolbox.embed_vocabulary()
    loaded = time.perf_counter()
    summary = api.invert_folder(images, toolbox=toolbox, budget=setup.budget)
    wall = time.perf_counter() - loaded
    return Row(
        "in-process",
        1,
        setup.threads,
        len(summary.images),
        loaded - started,
        wall,
        summary.count("finished"),
    )


def on_ray(workers: int) -> Callable[[Setup], Row]:
    """The batch on a local Ray instance with ``workers`` actors of ``threads`` CPUs each
    (:func:`arpo.api.ray_pool.run_on_ray`): the batch's jobs and ``invert_one`` on the
    workers, its captions and batch.json written here as the outcomes arrive. Load: Ray's
    start and every worker's models; wall: from the first worker ready to the last outcome."""

    def row(setup: Setup) -> Row:
        try:
            import ray
        except ImportError:
            return Row(f"ray-{workers}", workers, setup.threads, 0, None, None, 0, "no ray here")
        from arpo.api.batch import Batch, ImageJob, ImageOutcome, invert_one, scan_folder
        from arpo.api.ray_pool import run_on_ray
        from arpo.config import Settings

        images, home = fresh_copy(setup, f"ray-{workers}")
        folder = images.resolve()
        options = {"budget": setup.budget} if setup.budget else {}
        config = {"folder": str(folder), "models": {}, "options": options, "prompt": None}
        batch = Batch.open(folder, home / "batch", {**config, "prefix": ""})
        found, left_out = scan_folder(folder, recursive=False, extension=".txt")
        items = {item.name: item for item in batch.plan(found, left_out)}
        ready: list[float] = []
        arrived: list[float] = []

        def record(job: ImageJob, outcome: ImageOutcome) -> None:
            batch.record(outcome, items[job.name])
            arrived.append(time.perf_counter())

        started = time.perf_counter()
        ray.init(num_cpus=workers * setup.threads, include_dashboard=False, address="local")
        try:
            summary = run_on_ray(
                [batch.job(item) for item in items.values()],
                invert_one,
                record,
                settings=Settings(home=home, preset="demo"),
                workers=workers,
                cpus_per_worker=setup.threads,
                on_worker=lambda info: ready.append(time.perf_counter()),
            )
        finally:
            ray.shutdown()
        finished = sum(entry["status"] == "finished" for entry in batch.entries.values())
        note = f"{summary.deaths} worker deaths" if summary.deaths else ""
        load, wall = max(ready) - started, arrived[-1] - min(ready)
        return Row(f"ray-{workers}", workers, setup.threads, len(items), load, wall, finished, note)

    return row


# name -> what measures it
BACKENDS: dict[str, Callable[[Setup], Row]] = {
    "in-process": in_process,
    "ray-1": on_ray(1),
    "ray-2": on_ray(2),
}


def number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_table(rows: list[Row]) -> None:
    print("| backend | workers | threads/worker | images | finished | load s | batch s | "
          "images/min | s/image | note |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        per_image = row.wall_s / row.finished if row.wall_s and row.finished else None
        print(
            f"| {row.backend} | {row.workers} | {row.threads} | {row.images} | {row.finished} | "
            f"{number(row.load_s)} | {number(row.wall_s)} | {number(row.per_minute)} | "
            f"{number(per_image, 2)} | {row.note} |"
        )
    base = next((r for r in rows if r.backend == "in-process" and r.per_minute), None)
    for row in rows:
        if base is not None and row is not base and row.per_minute:
            print(f"{row.backend} / in-process: {row.per_minute / base.per_minute:.2f}x")
    one = next((r for r in rows if r.backend == "ray-1" and r.per_minute), None)
    two = next((r for r in rows if r.backend == "ray-2" and r.per_minute), None)
    if one and two:
        print(f"ray 2 workers / 1 worker: {two.per_minute / one.per_minute:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=40, help="demo scenes (demo:N)")
    parser.add_argument(
        "--budget", type=int, default=None, help="renders per image (default: a run's, 32)"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    parser.add_argument(
        "--backends",
        default=",".join(BACKENDS),
        help=f"comma-separated, of: {', '.join(BACKENDS)}",
    )
    args = parser.parse_args()
    chosen = [name.strip() for name in args.backends.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(BACKENDS))
    if unknown:
        parser.error(f"unknown backend(s) {', '.join(unknown)}; known: {', '.join(BACKENDS)}")
    with tempfile.TemporaryDirectory(prefix="arpo-batch-scale-") as scratch:
        work = Path(scratch)
        count = write_scenes(args.images, work / "scenes")
        setup = Setup(work / "scenes", work, args.budget, args.threads)
        print(f"demo:{count} on the demo preset, budget {args.budget or 'default (32)'}")
        rows = [BACKENDS[name](setup) for name in chosen]
    print_table(rows)


if __name__ == "__main__":
    main()
