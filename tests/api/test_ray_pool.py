"""``run_on_ray``: demo-preset inversions on two Ray workers on a local Ray instance (loopback,
2 CPUs); a worker killed mid-job loses only that job, which another worker redoes; a folder's
batch (its jobs and ``invert_one`` on the workers, its captions written by the driver) gets
one caption beside each image though a worker died.

Needs the ``ray`` extra (``pip install -e '.[dev]'`` brings it); the Ray tests are skipped
without it, the missing-Ray message is checked either way.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

import arpo
from arpo.api.batch import Batch, ImageJob, ImageOutcome, invert_one, scan_folder
from arpo.api.ray_pool import (
    RayUnavailableError,
    WorkerPlan,
    WorkersLostError,
    plan_workers,
    run_on_ray,
)
from arpo.config import Settings
from arpo.tools.toolbox import Toolbox

SCENES = 4


@dataclass(frozen=True)
class SceneJob:
    """One demo scene to invert; ``die`` makes its worker's process exit mid-job: on the
    first attempt only ("once", remembered by a marker file holding the dead pid), or on
    every attempt ("always")."""

    name: str
    path: str
    die: Literal["never", "once", "always"] = "never"
    marker: str = ""


@dataclass(frozen=True)
class SceneResult:
    name: str
    prompt: str
    text_score: float
    run_id: str
    pid: int


def invert_scene(job: SceneJob, toolbox: Toolbox) -> SceneResult:
    """The work: a small real inversion (2 iterations) on the worker's own models."""
    from arpo.api import reverse_prompt

    if job.die == "always" or (job.die == "once" and not Path(job.marker).exists()):
        Path(job.marker).write_text(str(os.getpid()))
        time.sleep(0.5)  # mid-job: the answer to the job before has long reached the driver
        os._exit(1)  # the worker's process dies, as a killed one does
    result = reverse_prompt(job.path, toolbox=toolbox, iterations=2)
    return SceneResult(
        job.name, result.best_prompt, result.best_text_score, result.run_id, os.getpid()
    )


def invert_or_die(job: ImageJob, toolbox: Toolbox) -> ImageOutcome:
    """The batch's own work (:func:`invert_one`), except that the worker's process dies in
    the middle of the run (after its first iteration) of an image whose ``kill-NAME`` file
    lies beside the folder (once: the file goes)."""
    order = job.folder.parent / f"kill-{job.name}"

    def die_mid_run(event: dict[str, Any]) -> None:
        if event.get("event") == "iteration" and order.exists():
            order.unlink()
            os._exit(1)

    return invert_one(job, toolbox, die_mid_run)


def fails(job: SceneJob, toolbox: Toolbox) -> None:
    raise ValueError(f"no luck with {job.name}")


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[Any]:
    """A local Ray instance on loopback with 2 CPUs, whose workers import this checkout's
    arpo and this test module (the work functions live here)."""
    ray = pytest.importorskip("ray", reason="ray is not installed: pip install -e '.[ray]'")
    paths = [str(Path(arpo.__file__).parents[1]), str(Path(__file__).parent)]
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [*paths, before]))
    ray.init(num_cpus=2, include_dashboard=False, address="local", log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The first held-out demo scenes (the bench's demo:N) as PNG files."""
    from arpo.bench.dataset import demo_dataset

    folder = tmp_path_factory.mktemp("scenes")
    paths = []
    for image in demo_dataset(f"demo:{SCENES}").images:
        image.load().save(folder / f"{image.name}.png")
        paths.append(folder / f"{image.name}.png")
    return paths


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", preset="demo")


def jobs_for(scenes: list[Path], tmp_path: Path, **dying: str) -> list[SceneJob]:
    marker = str(tmp_path / "died.pid")
    return [
        SceneJob(path.stem, str(path), dying.get(path.stem, "never"), marker) for path in scenes
    ]


def test_every_job_gets_one_result_across_two_workers(ray_instance, scenes, settings, tmp_path):
    results: list[SceneResult] = []
    summary = run_on_ray(
        jobs_for(scenes, tmp_path),
        invert_scene,
        lambda job, result: results.append(result),
        settings=settings,
        workers=2,
    )
    assert Counter(r.name for r in results) == Counter(p.stem for p in scenes)
    assert all(r.prompt and r.text_score > 0 for r in results)
    assert summary.results == SCENES and summary.deaths == 0 and not summary.lost
    assert len({w.pid for w in summary.workers}) == 2  # two processes, each its own models
    assert all(w.threads == 1 and w.device == "cpu" for w in summary.workers)  # one CPU each
    assert {r.pid for r in results} <= {w.pid for w in summary.workers}
    assert os.getpid() not in {r.pid for r in results}  # none of the work ran in the driver
    runs = sorted(p.name for p in (settings.home / "runs").iterdir())
    assert runs == sorted(r.run_id for r in results)  # a normal run each, in the shared home


def test_a_killed_worker_loses_only_its_job_which_another_redoes(
    ray_instance, scenes, settings, tmp_path
):
    victim = scenes[1].stem
    results: list[SceneResult] = []
    summary = run_on_ray(
        jobs_for(scenes, tmp_path, **{victim: "once"}),
        invert_scene,
        lambda job, result: results.append(result),
        settings=settings,
        workers=2,
    )
    assert Counter(r.name for r in results) == Counter(p.stem for p in scenes)  # one each
    assert summary.deaths == 1 and [job.name for job in summary.redone] == [victim]
    dead_pid = int((tmp_path / "died.pid").read_text())
    redone = next(r for r in results if r.name == victim)
    assert redone.pid != dead_pid  # another worker did it
    assert not summary.lost


def test_a_folder_on_ray_gets_one_caption_beside_each_image_though_a_worker_died(
    ray_instance, scenes, settings, tmp_path
):
    """The batch's pieces on Ray: its jobs and :func:`invert_one` on the workers, its
    bookkeeping (captions, batch.json) in the driver as outcomes arrive."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for path in scenes:
        shutil.copy(path, folder / path.name)
    victim = scenes[2].name
    (tmp_path / f"kill-{victim}").touch()
    config = {"folder": str(folder), "models": {}, "options": {}, "prompt": None}
    batch = Batch.open(folder, tmp_path / "out", {**config, "prefix": "trigger, "})
    found, left_out = scan_folder(folder, recursive=False, extension=".txt")
    items = {item.name: item for item in batch.plan(found, left_out)}
    jobs = [batch.job(item) for item in items.values()]
    planned = {job.name: job.run_id for job in jobs}
    summary = run_on_ray(
        jobs,
        invert_or_die,
        lambda job, outcome: batch.record(outcome, items[job.name]),
        settings=settings,
        workers=2,
    )
    assert [job.name for job in summary.redone] == [victim] and summary.deaths == 1
    captions = sorted(p.name for p in folder.iterdir() if p.suffix == ".txt")
    assert captions == sorted(f"{p.stem}.txt" for p in scenes)  # one beside each image
    assert len(list(folder.iterdir())) == 2 * SCENES  # nothing half-written beside them
    assert all((folder / c).read_text().startswith("trigger, ") for c in captions)
    assert {e["status"] for e in batch.entries.values()} == {"finished"}
    # the killed run was continued under the id the batch gave it before it went out
    assert {name: e["run_id"] for name, e in batch.entries.items()} == planned
    runs = sorted(p.parent.name for p in settings.runs_dir.glob("*/run.json"))
    assert runs == sorted(planned.values())  # one run per image: none started twice
    killed = arpo.api.run_details(planned[victim], settings=settings)
    assert killed.status == "finished" and killed.iterations >= 2


def test_invert_folder_on_ray_captions_every_image(
    ray_instance, scenes, settings, tmp_path, monkeypatch
):
    """``arpo.invert_folder(..., ray=...)``, what ``arpo invert FOLDER --ray`` calls: the
    images run on 2 workers, the captions and batch.json are written here; a non-image is
    listed as unreadable."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for path in scenes:
        shutil.copy(path, folder / path.name)
    (folder / "notes.png").write_text("not an image")
    events: list[dict] = []
    summary = arpo.invert_folder(
        folder,
        out_dir=tmp_path / "out",
        prefix="sks, ",
        toolbox=Toolbox(settings),
        on_progress=events.append,
        ray={"workers": 2},
        iterations=2,
    )
    assert summary.count("finished") == SCENES and summary.count("unreadable") == 1
    for path in scenes:
        assert (folder / f"{path.stem}.txt").read_text().startswith("sks, ")
    images = [e for e in events if e["event"] == "image"]
    assert sorted(e["done"] for e in images) == list(range(1, SCENES + 2))
    assert (tmp_path / "out" / "batch.json").is_file()


def test_a_job_that_kills_every_worker_is_given_up_and_the_rest_done(
    ray_instance, scenes, settings, tmp_path
):
    poison = scenes[0].stem
    results: list[SceneResult] = []
    lost: list[tuple[str, str]] = []
    summary = run_on_ray(
        jobs_for(scenes[:3], tmp_path, **{poison: "always"}),
        invert_scene,
        lambda job, result: results.append(result),
        settings=settings,
        workers=2,
        max_attempts=2,
        on_lost=lambda job, why: lost.append((job.name, why)),
    )
    assert sorted(r.name for r in results) == sorted(p.stem for p in scenes[1:3])
    assert lost == [(poison, "its worker died 2 times running it")]
    assert summary.deaths == 2 and [job.name for job in summary.redone] == [poison]


def test_with_no_worker_left_the_jobs_not_done_are_raised_after_the_rest(
    ray_instance, scenes, settings, tmp_path
):
    results: list[SceneResult] = []
    first, second, third = (p.stem for p in scenes[:3])
    with pytest.raises(WorkersLostError, match=r"2 job\(s\) were given up") as raised:
        run_on_ray(
            jobs_for(scenes[:3], tmp_path, **{second: "always"}),
            invert_scene,
            lambda job, result: results.append(result),
            settings=settings,
            workers=1,
            max_in_flight=1,
            max_restarts=0,
        )
    assert [r.name for r in results] == [first]
    assert [job.name for job in raised.value.lost] == [second, third]
    assert "no Ray worker was left" in str(raised.value)


class GrowingJobs:
    """Jobs read as workers have room, to which ``on_result`` may add (a failed job queued
    once more, as the batch driver does)."""

    def __init__(self, jobs: list[SceneJob]) -> None:
        self.queue = deque(jobs)

    def __iter__(self) -> GrowingJobs:
        return self

    def __next__(self) -> SceneJob:
        if not self.queue:
            raise StopIteration
        return self.queue.popleft()


def test_jobs_added_from_on_result_are_run_too(ray_instance, scenes, settings, tmp_path):
    jobs = GrowingJobs(jobs_for(scenes[:1], tmp_path))
    results: list[SceneResult] = []

    def on_result(job: SceneJob, result: SceneResult) -> None:
        results.append(result)
        if len(results) == 1:
            jobs.queue.append(job)  # once more

    run_on_ray(jobs, invert_scene, on_result, settings=settings, workers=1)
    assert [r.name for r in results] == [scenes[0].stem] * 2
    assert results[0].run_id != results[1].run_id


def test_an_error_raised_by_the_work_is_raised_in_the_driver(
    ray_instance, scenes, settings, tmp_path
):
    with pytest.raises(ValueError, match=f"no luck with {scenes[0].stem}"):
        run_on_ray(jobs_for(scenes[:1], tmp_path), fails, print, settings=settings, workers=1)


def test_workers_that_do_not_fit_the_cluster_are_refused(ray_instance, settings):
    with pytest.raises(RayUnavailableError, match=r"3 workers with 1 CPUs .* \(2 CPUs, 0 GPUs\)"):
        run_on_ray([], fails, print, settings=settings, workers=3)


class FakeCluster:
    """What plan_workers reads from ray: the cluster's resources."""

    def __init__(self, cpus: int, gpus: int = 0) -> None:
        self.resources = {"CPU": float(cpus), **({"GPU": float(gpus)} if gpus else {})}

    def cluster_resources(self) -> dict[str, float]:
        return self.resources


@pytest.mark.parametrize(
    ("cpus", "gpus", "workers", "cpus_each", "expected"),
    [
        (64, 4, None, 1, WorkerPlan(4, 1.0, 1.0)),  # one actor per GPU
        (64, 4, 8, 1, WorkerPlan(8, 1.0, 0.5)),  # two per GPU
        (64, 3, 4, 1, WorkerPlan(4, 1.0, 0.5)),  # up to two per GPU: all four fit
        (16, 0, None, 4, WorkerPlan(4, 4.0, 0.0)),  # no GPU: one per CPU share
        (2, 0, 2, 1, WorkerPlan(2, 1.0, 0.0)),
    ],
)
def test_the_plan_puts_one_actor_per_gpu_or_shares(cpus, gpus, workers, cpus_each, expected):
    assert plan_workers(FakeCluster(cpus, gpus), workers, cpus_each, None) == expected


def test_a_plan_the_cluster_cannot_hold_is_refused_with_the_numbers():
    with pytest.raises(RayUnavailableError, match=r"2 workers with 1 CPUs and 1 GPUs each"):
        plan_workers(FakeCluster(8, 1), 2, 1, 1.0)


def test_bad_numbers_name_the_value(settings):
    with pytest.raises(ValueError, match="workers=0: give at least 1"):
        run_on_ray([], fails, print, settings=settings, workers=0)


def test_without_ray_the_error_says_how_to_install_it(monkeypatch, settings):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails, as when not installed
    with pytest.raises(RayUnavailableError, match=r"pip install 'arpo\[ray\]'"):
        run_on_ray([], fails, print, settings=settings)
