"""Run a bench: every (image, method) pair, resumable, then the CSV, summary and report.

Each finished pair is saved as ``OUT/pairs/<image>/<method>.json`` the moment it finishes; a
rerun with the same ``--out`` loads those and runs only the rest. A pair that fails (bad
image, model error, LLM down) is recorded as failed and the job goes on.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arpo.errors import ArpoError, InvalidOptionError

if TYPE_CHECKING:
    from arpo.bench.dataset import BenchImage
    from arpo.bench.judge import Judge
    from arpo.bench.methods import Method
    from arpo.tools.toolbox import Toolbox

log = logging.getLogger(__name__)

ProgressCallback = Callable[[dict[str, Any]], None]
CONFIG_NAME = "bench.json"
RESULTS_NAME = "results.csv"
SUMMARY_NAME = "summary.json"
REPORT_NAME = "report.html"
DEFAULT_REPLAY_SEEDS = 3


@dataclass(frozen=True)
class BenchOutcome:
    out_dir: Path
    rows: list[dict[str, Any]]  # one per (image, method), dataset order then method order
    summary: dict[str, dict[str, Any]]
    problems: list[dict[str, str]]  # images that could not be used, with why
    results_csv: Path
    summary_json: Path
    report_html: Path
    paired: dict[str, Any] | None = None  # each method against the reference (summary.json)
    judge: str = ""  # who judged, in words ("judge: ... (held out)")


@dataclass(frozen=True)
class BenchConfig:
    """What makes results comparable: a resumed bench must use the same."""

    budget: int
    replay_seeds: int
    seed: int
    models: dict[str, str | None]
    options: dict[str, Any]  # run-option overrides for every render (size, steps)
    judge: str  # the judge's model name ("same": the search's own scorer)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def run_bench(
    dataset: str,
    *,
    out_dir: str | Path,
    methods: Sequence[str] = ("offline",),
    budget: int | None = None,
    replay_seeds: int = DEFAULT_REPLAY_SEEDS,
    seed: int = 0,
    options: dict[str, Any] | None = None,
    judge: str | None = None,
    reference: str | None = None,
    toolbox: Toolbox | None = None,
    on_progress: ProgressCallback | None = None,
) -> BenchOutcome:
    """Compare ``methods`` on ``dataset`` (a folder of images or ``demo:N``) and write
    ``results.csv``, ``summary.json`` and ``report.html`` into ``out_dir``.

    ``budget``: renders per image for methods that render; ``replay_seeds``: seeds each final
    prompt is rendered with to measure how well it recreates the image; ``options``: run
    options over the toolbox's defaults for every render (e.g. ``width``, ``steps``);
    ``judge``: the CLIP that scores every similarity column (:mod:`arpo.bench.judge`; default:
    the preset's held-out judge; ``same``: the search's own scorer, labelled as not held
    out); ``reference``: the method
    every other is paired against (default: the first ARPO method benched).
    """
    from arpo.api import get_toolbox
    from arpo.bench.dataset import load_dataset
    from arpo.bench.judge import check_judge, default_judge, load_judge
    from arpo.bench.methods import resolve_methods
    from arpo.bench.summary import reference_method
    from arpo.graph.context import DEFAULT_RENDER_BUDGET, RunOptions

    budget = DEFAULT_RENDER_BUDGET if budget is None else budget  # what a user's run gets
    if budget < 1:
        raise InvalidOptionError(f"--budget {budget}: give at least 1 render per image.")
    if replay_seeds < 1:
        raise InvalidOptionError(f"--seeds {replay_seeds}: give at least 1 replay seed.")
    chosen = resolve_methods(list(methods))
    against = reference_method([m.name for m in chosen], reference)
    toolbox = toolbox or get_toolbox()
    data = load_dataset(dataset, max_pixels=toolbox.settings.max_image_pixels)
    out = Path(out_dir).expanduser().resolve()
    options = dict(options or {})
    # bad options fail here, not per pair: the run options, and what the model family refuses
    toolbox.check_render_params(RunOptions.build(toolbox.option_defaults, **options).render_params)
    for method in chosen:
        if method.check_budget is not None:
            method.check_budget({**toolbox.option_defaults, **options}, budget)
    judge = judge if judge is not None else default_judge(toolbox)
    check_judge(toolbox, judge)  # before the out dir is claimed: a refused judge leaves none
    config = BenchConfig(
        budget, replay_seeds, seed, toolbox.describe_models(), options, judge.strip()
    )
    _claim_out_dir(out, config, dataset)
    toolbox.load_models()
    judged = load_judge(toolbox, judge)
    # the vocabulary's text embeddings, once (from the disk cache when it holds them): else
    # the first method to rank phrases pays it
    toolbox.embed_vocabulary()

    problems = list(data.problems)
    rows: list[dict[str, Any]] = []
    total, done = len(data.images) * len(chosen), 0
    _progress(on_progress, {"event": "started", "total": total, "out_dir": str(out)})
    for image in data.images:
        prepared = _prepare(toolbox, judged, image, out, problems)
        for method in chosen:
            row = _pair(toolbox, judged, image, method, prepared, out, config)
            rows.append(row)
            done += 1
            _progress(
                on_progress,
                {"event": "pair", "done": done, "total": total, **_brief(row)},
            )
    return _write_outputs(
        out,
        dataset,
        config,
        judged,
        chosen,
        rows,
        problems,
        against,
        reproducible=toolbox.renderer.seeded,
    )


# --------------------------------------------------------------------------- one pair


def _prepare(
    toolbox: Toolbox, judge: Judge, image: BenchImage, out: Path, problems: list[dict[str, str]]
) -> tuple[Any, Any, Any] | None:
    """The reference image, its embedding by the search's CLIP and by the judge's, or None
    (recorded) if it cannot be read."""
    try:
        picture = image.load()
    except ArpoError as error:
        problems.append({"image": image.name, "error": str(error)})
        return None
    digest = toolbox.store.put_image(picture)
    folder = out / "images" / slug(image.name)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(toolbox.store.path(digest), folder / "reference.png")
    embedding = toolbox.scorer.encode_images([picture], keys=[digest])[0]
    judged = judge.scorer.encode_images([picture], keys=[digest])[0]
    return picture, embedding, judged


def _pair(
    toolbox: Toolbox,
    judge: Judge,
    image: BenchImage,
    method: Method,
    prepared: tuple[Any, Any, Any] | None,
    out: Path,
    config: BenchConfig,
) -> dict[str, Any]:
    path = out / "pairs" / slug(image.name) / f"{method.name}.json"
    base = {"image": image.name, "method": method.name, "true_prompt": image.true_prompt}
    if prepared is None:
        return {**base, "status": "failed", "error": "the image could not be read"}
    finished = _load_pair(path)
    if finished is not None:
        return finished
    if method.needs_llm and not toolbox.llm_available:
        note = "skipped: no LLM configured (set ARPO_LLM_API_KEY or ARPO_LLM_BASE_URL)"
        return {**base, "status": "skipped", "note": note}
    try:
        row = {**base, **_run_pair(toolbox, judge, image, method, prepared, out, config)}
    except ArpoError as error:
        return {**base, "status": "failed", "error": str(error)}
    except Exception as error:  # a method's bug must not end the whole bench
        log.exception("%s on %s failed", method.name, image.name)
        return {**base, "status": "failed", "error": f"{type(error).__name__}: {error}"}
    from arpo.tools.store import atomic_write

    atomic_write(path, json.dumps(row, indent=1).encode())
    return row


def _run_pair(
    toolbox: Toolbox,
    judge: Judge,
    image: BenchImage,
    method: Method,
    prepared: tuple[Any, Any, Any],
    out: Path,
    config: BenchConfig,
) -> dict[str, Any]:
    from arpo.bench import metrics
    from arpo.bench.cost import StageMeter, metered_toolbox
    from arpo.bench.methods import BenchTask

    picture, embedding, judged = prepared
    workdir = out / "runs" / slug(image.name) / method.name
    shutil.rmtree(workdir, ignore_errors=True)  # an interrupted attempt's leftovers
    meter = StageMeter()
    task = BenchTask(
        toolbox=metered_toolbox(toolbox, meter),
        reference=picture,
        embedding=embedding,
        budget=config.budget,
        meter=meter,
        seed=config.seed,
        workdir=workdir,
        options=config.options,
    )
    started = time.perf_counter()
    output = method.run(task)
    elapsed = time.perf_counter() - started
    seeds = metrics.replay_seeds(config.seed, config.replay_seeds)
    quality, renders = metrics.quality(
        toolbox, image, judged, output.prompt, seeds, config.options, judge=judge.scorer
    )
    render = Path("images") / slug(image.name) / f"{method.name}.png"
    shutil.copyfile(toolbox.store.path(renders[0]), out / render)
    curve = metrics.best_by_render(toolbox, meter, judged, judge=judge.scorer)
    return {
        "status": "done",
        "prompt": output.prompt,
        **quality,
        "search_image_score": curve[-1] if curve else None,
        **metrics.cost(meter, elapsed),
        "note": output.note,
        "error": None,
        "render": render.as_posix(),
        "best_by_render": curve,
        "details": output.details,
    }


def _load_pair(path: Path) -> dict[str, Any] | None:
    try:
        row = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return row if isinstance(row, dict) and row.get("status") == "done" else None


# --------------------------------------------------------------------------- job files


def _claim_out_dir(out: Path, config: BenchConfig, dataset: str) -> None:
    """Create ``out`` for this bench, or check that the bench it holds used the same budget,
    seeds and models (else resuming would mix incomparable results)."""
    from arpo.tools.store import atomic_write

    if out.exists() and not out.is_dir():
        raise InvalidOptionError(f"--out {out} is a file; give a directory.")
    path = out / CONFIG_NAME
    if path.is_file():
        try:
            previous = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            previous = {}
        wanted = config.to_dict()
        changed = [k for k in wanted if previous.get(k) != wanted[k]]
        if changed:
            differences = "; ".join(
                f"{k}: {previous.get(k)} there, {wanted[k]} now" for k in changed
            )
            raise InvalidOptionError(
                f"{out} holds a bench run with different {', '.join(changed)} ({differences}); "
                "rerun with the same options to resume it, or choose another --out directory."
            )
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps({**config.to_dict(), "dataset": dataset}, indent=2).encode())


def _write_outputs(
    out: Path,
    dataset: str,
    config: BenchConfig,
    judge: Judge,
    methods: list[Method],
    rows: list[dict[str, Any]],
    problems: list[dict[str, str]],
    reference: str | None = None,
    *,
    reproducible: bool = True,
) -> BenchOutcome:
    from arpo.bench.metrics import METRICS
    from arpo.bench.report import write_report
    from arpo.bench.summary import paired_summary, summarize
    from arpo.tools.store import atomic_write

    names = [m.name for m in methods]
    summary = summarize(rows, METRICS, names)
    document = {
        "dataset": dataset,
        **config.to_dict(),
        "judge": judge.describe(),
        "methods": {m.name: m.summary for m in methods},
        "summary": summary,
        "paired": paired_summary(rows, METRICS, names, reference) if reference else None,
        "problems": problems,
        # False where the renderer takes no seed (images API): replays are new samples
        "reproducible": reproducible,
    }
    atomic_write(out / RESULTS_NAME, results_csv(rows).encode())
    atomic_write(out / SUMMARY_NAME, json.dumps(document, indent=2).encode())
    report = write_report(out, document, rows)
    return BenchOutcome(
        out,
        rows,
        summary,
        problems,
        out / RESULTS_NAME,
        out / SUMMARY_NAME,
        report,
        document["paired"],
        judge.label,
    )


CSV_COLUMNS = ("image", "method", "status", "prompt", "true_prompt")


def results_csv(rows: list[dict[str, Any]]) -> str:
    from arpo.bench.metrics import METRICS

    columns = [*CSV_COLUMNS, *METRICS, "note", "error", "render"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in columns})
    return buffer.getvalue()


def slug(name: str) -> str:
    """A file-system-safe folder name for an image name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "image"


def _brief(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("image", "method", "status", "prompt", "image_score", "error", "note")
    return {k: row.get(k) for k in keys}


def _progress(callback: ProgressCallback | None, event: dict[str, Any]) -> None:
    if callback is not None:
        callback(event)
