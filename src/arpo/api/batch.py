"""Batch inversion over a folder: one normal run per image, a caption file beside each.

The kohya-ss convention: ``name.txt`` beside ``name.png`` holds the image's caption, here
``--prefix`` (a trigger word) and the run's best prompt. Each image gets a normal run (record,
checkpoints, report: ``arpo runs`` lists it, ``arpo invert --resume`` continues it).

Where the work runs and where results are written are apart, so another backend can run the
work elsewhere and hand the outcomes to the same driver:

- :func:`invert_one` does one image's work: read it through the one image resolver (confined
  to the folder), start its run or continue an earlier one, and return an
  :class:`ImageOutcome` (plain data, a small thumbnail included). It writes nothing beside
  the image.
- :class:`Batch` is the driver's bookkeeping: which images to run (finished ones are skipped,
  interrupted ones continue their run), each outcome recorded in ``batch.json`` as it
  arrives, captions written atomically, then ``batch.csv`` and the index ``report.html``.
- :func:`invert_folder` runs the jobs in this process, retrying a failed image once at the end
  of the queue.

One batch per output folder at a time (a lock file); a rerun with the same output folder
(the default one is per image folder) resumes.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import logging
import os
import re
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arpo.api.results import BatchImage, BatchSummary, Result
from arpo.errors import ArpoError, InvalidImageError, InvalidOptionError, RunCancelled
from arpo.tools.store import atomic_write

if TYPE_CHECKING:
    from arpo.tools.toolbox import Toolbox

log = logging.getLogger(__name__)

ProgressCallback = Callable[[dict[str, Any]], None]
STATE_NAME = "batch.json"
CSV_NAME = "batch.csv"
REPORT_NAME = "report.html"
LOCK_NAME = ".lock"
MAX_ATTEMPTS = 2  # a failed image is retried once per batch run
THUMBNAIL_SIDE = 160
CSV_COLUMNS = (
    "name",
    "status",
    "prompt",
    "objective",
    "text_score",
    "image_score",
    "run_id",
    "caption",
    "report",
    "attempts",
    "error",
)


# --------------------------------------------------------------------------- one image


@dataclass(frozen=True)
class ImageJob:
    """One image's work: plain data, so it can travel to a worker."""

    name: str  # its path inside the folder, with '/'
    path: Path  # where the folder lists it (a link is resolved by the resolver)
    folder: Path  # the folder's real path: the image may not lead out of it
    options: dict[str, Any] = field(default_factory=dict)  # run options (None: default)
    prompt: str | None = None  # a starting prompt for every image (default: a caption)
    run_id: str | None = None  # an earlier run of this image, to continue


@dataclass(frozen=True)
class ImageOutcome:
    """What :func:`invert_one` found: ``finished``, ``failed`` or ``unreadable``."""

    name: str
    status: str
    run_id: str | None = None
    run_dir: str | None = None
    prompt: str | None = None
    objective: str | None = None
    text_score: float | None = None
    image_score: float | None = None
    error: str | None = None
    elapsed_s: float = 0.0
    thumbnail: bytes | None = None  # PNG, at most THUMBNAIL_SIDE px a side


def invert_one(
    job: ImageJob, toolbox: Toolbox, on_progress: ProgressCallback | None = None
) -> ImageOutcome:
    """Run (or continue) ``job``'s image and say how it went; never raises for a bad image or
    a failed run (they are outcomes). Ctrl-C and cancellation propagate: the run records
    itself ``interrupted`` and continues next time. ``on_progress`` gets the run's events
    (the first, ``started``, names the run)."""
    from arpo.api.images import read_folder_image

    started = time.perf_counter()
    try:
        picture = read_folder_image(job.path, job.folder, toolbox)
    except InvalidImageError as error:
        return ImageOutcome(job.name, "unreadable", error=str(error))
    seen = {"run_id": job.run_id}

    def forward(event: dict[str, Any]) -> None:
        if event.get("event") == "started":
            seen["run_id"] = event.get("run_id")
        if on_progress is not None:
            on_progress(event)

    try:
        result = _run_or_continue(job, picture, toolbox, forward)
    except (KeyboardInterrupt, RunCancelled):
        raise
    except ArpoError as error:
        return _failed(job, seen["run_id"], str(error), started)
    except Exception as error:  # one image's bug must not end the batch
        log.exception("the run of %s failed", job.name)
        return _failed(
            job, seen["run_id"], f"internal error: {type(error).__name__}: {error}", started
        )
    return ImageOutcome(
        job.name,
        "finished",
        run_id=result.run_id,
        run_dir=str(result.run_dir),
        prompt=result.best_prompt,
        objective=result.objective,
        text_score=result.best_text_score,
        image_score=result.best_image_score,
        elapsed_s=time.perf_counter() - started,
        thumbnail=_thumbnail(picture),
    )


def _failed(job: ImageJob, run_id: str | None, error: str, started: float) -> ImageOutcome:
    elapsed = time.perf_counter() - started
    return ImageOutcome(job.name, "failed", run_id=run_id, error=error, elapsed_s=elapsed)


def _run_or_continue(
    job: ImageJob, picture: Any, toolbox: Toolbox, on_progress: ProgressCallback
) -> Result:
    """The earlier run's result if it finished; that run continued if it can be (and is of
    this very image); else a new run: under the job's run id when no run has it yet (the id
    the batch planned), else (a failed run, another image) under a fresh one."""
    from arpo.api.history import run_details
    from arpo.api.runs import resume, reverse_prompt
    from arpo.errors import RunNotFoundError

    new_id = job.run_id
    if job.run_id:
        try:
            details = run_details(job.run_id, settings=toolbox.settings)
        except RunNotFoundError:
            details = None  # not started yet (or deleted since): start it under this id
        same_image = details is not None and details.reference == toolbox.store.put_image(picture)
        if details is not None and same_image and details.status == "finished":
            return _finished_result(Path(details.run_dir), details.objective)
        if details is not None and same_image and details.resumable:
            return resume(job.run_id, toolbox=toolbox, on_progress=on_progress)
        if details is not None:
            new_id = None
    return reverse_prompt(
        picture,
        prompt=job.prompt,
        toolbox=toolbox,
        on_progress=on_progress,
        run_id=new_id,
        **job.options,
    )


def _finished_result(run_dir: Path, objective: Any) -> Result:
    try:
        exported = json.loads((run_dir / "result.json").read_text())
    except (OSError, ValueError) as error:
        raise ArpoError(
            f"the finished run's result {run_dir / 'result.json'} is unreadable: {error}"
        ) from error
    return Result.from_export(run_dir, exported, objective)


def _thumbnail(picture: Any) -> bytes:
    from arpo.tools.images import encode_png, thumbnail

    return encode_png(thumbnail(picture, THUMBNAIL_SIDE))


# --------------------------------------------------------------------------- the folder


@dataclass(frozen=True)
class Found:
    """An image file the folder lists, and its caption file."""

    name: str
    path: Path
    caption: Path


def scan_folder(
    folder: Path, *, recursive: bool, extension: str, exclude: tuple[Path, ...] = ()
) -> tuple[list[Found], list[tuple[str, str]]]:
    """The image files in ``folder`` (by suffix, sorted by path; hidden files and the folders
    in ``exclude`` left out; folders reached through links not entered), and the ones left
    out as ``(name, why)``: two images whose caption would be the same file."""
    from arpo.tools.images import IMAGE_SUFFIXES

    paths = []
    for directory, subdirs, files in os.walk(folder, followlinks=False):
        here = Path(directory)
        subdirs[:] = sorted(
            d for d in subdirs if not d.startswith(".") and (here / d).resolve() not in exclude
        )
        paths.extend(
            here / name
            for name in files
            if not name.startswith(".") and name.lower().endswith(IMAGE_SUFFIXES)
        )
        if not recursive:
            break
    found = sorted(
        (Found(p.relative_to(folder).as_posix(), p, p.with_suffix(extension)) for p in paths),
        key=lambda f: f.name,
    )
    kept, left_out, owners = [], [], {}
    for item in found:
        owner = owners.setdefault(item.caption, item.name)
        if owner != item.name:
            left_out.append(
                (
                    item.name,
                    f"its caption file {item.caption.name} is {owner}'s too; rename one of them",
                )
            )
            continue
        kept.append(item)
    return kept, left_out


def check_caption_extension(extension: str) -> str:
    """The caption files' extension, with its dot (``txt`` is ``.txt``)."""
    from arpo.tools.images import IMAGE_SUFFIXES

    text = extension.strip()
    text = text if text.startswith(".") else f".{text}"
    if not re.fullmatch(r"\.[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*", text):
        raise InvalidOptionError(
            f"--caption-extension {extension!r} is not a file extension; give one such as "
            ".txt or .caption."
        )
    if text.lower().endswith(IMAGE_SUFFIXES):
        raise InvalidOptionError(
            f"--caption-extension {extension!r} is an image extension: captions would replace "
            "images. Give one such as .txt or .caption."
        )
    return text


def default_out_dir(folder: Path, batches_dir: Path) -> Path:
    """Where a folder's batch lives unless ``--out`` says: one per folder, so that running
    the same command again resumes it."""
    digest = hashlib.sha256(str(folder).encode()).hexdigest()[:8]
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", folder.name).strip("._") or "folder"
    return batches_dir / f"{name}-{digest}"


def _check_folder(folder: str | os.PathLike[str]) -> Path:
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise InvalidOptionError(
            f"{str(folder)!r} is not a folder; give a folder of images (or one image file)."
        )
    return path.resolve()


# --------------------------------------------------------------------------- the driver


class Batch:
    """A batch's state in ``OUT/batch.json``: its settings and every image's entry, saved
    after every change, so a batch stopped anywhere continues where it was."""

    def __init__(
        self, folder: Path, out_dir: Path, config: dict[str, Any], overwrite: bool = False
    ) -> None:
        self.folder = folder
        self.out_dir = out_dir
        self.config = config  # folder, models, options, prompt, prefix, caption_extension
        self.overwrite = overwrite  # replace caption files that were there before
        self.entries: dict[str, dict[str, Any]] = {}
        self.already_finished = 0
        self.started = time.perf_counter()

    @classmethod
    def open(
        cls, folder: Path, out_dir: Path, config: dict[str, Any], overwrite: bool = False
    ) -> Batch:
        """The batch in ``out_dir``, or a new one; refuses one made over another folder or
        with other models or run options."""
        batch = cls(folder, out_dir, config, overwrite)
        path = out_dir / STATE_NAME
        if not path.is_file():
            return batch
        try:
            saved = json.loads(path.read_text())
            recorded, entries = saved["config"], saved["images"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise InvalidOptionError(
                f"{path} is unreadable ({error}); give a new --out folder, or delete it."
            ) from error
        for key in ("folder", "models", "options", "prompt"):
            if recorded.get(key) != config.get(key):
                raise InvalidOptionError(
                    f"the batch in {out_dir} was made with {key} {recorded.get(key)!r}, not "
                    f"{config.get(key)!r}; rerun it as it was made, or give a new --out folder."
                )
        batch.entries = {entry["name"]: entry for entry in entries if "name" in entry}
        return batch

    def plan(self, found: list[Found], left_out: list[tuple[str, str]]) -> list[Found]:
        """Which images to run: not those an earlier run finished, nor those with a caption
        already (unless :attr:`overwrite`). Left-out ones are recorded as skipped."""
        todo = []
        listed = {item.name for item in found} | {name for name, _ in left_out}
        self.entries = {name: e for name, e in self.entries.items() if name in listed}
        for name, why in left_out:
            self._set(name, status="skipped", error=why, caption=None)
        for item in found:
            entry = self.entries.get(item.name, {})
            if entry.get("status") == "finished":
                self.already_finished += 1
                continue
            caption = self._relative_caption(item)
            if item.caption.exists() and not self.overwrite:
                self._set(item.name, status="skipped", caption=caption, error=_HAS_CAPTION)
                continue
            self._set(item.name, status="pending", caption=caption, error=None)
            todo.append(item)
        self.save()
        return todo

    def job(self, item: Found) -> ImageJob:
        """``item``'s work, with the run an earlier try left (to continue it), else the id its
        run will take: recorded before the work goes out, so that however the run ends (its
        worker killed, the batch stopped), the next batch finds it and continues it."""
        from arpo.api.records import new_run_id

        run_id = self.entries.get(item.name, {}).get("run_id")
        if not run_id:
            run_id = new_run_id()
            self._set(item.name, run_id=run_id)
            self.save()
        options, prompt = self.config["options"], self.config["prompt"]
        return ImageJob(item.name, item.path, self.folder, options, prompt, run_id)

    def started_run(self, name: str, run_id: str | None) -> None:
        """A run started for ``name``: recorded at once, so that an interruption continues it."""
        self._set(name, run_id=run_id, status="running")
        self.save()

    def attempted(self, name: str) -> None:
        self._set(name, attempts=int(self.entries.get(name, {}).get("attempts", 0)) + 1)

    def record(self, outcome: ImageOutcome, item: Found) -> str:
        """Record ``outcome`` (a finished one's caption and thumbnail written first); the
        image's status."""
        fields: dict[str, Any] = {
            "status": outcome.status,
            "error": outcome.error,
            "elapsed_s": round(outcome.elapsed_s, 3),
        }
        if outcome.run_id:
            fields["run_id"] = outcome.run_id
        if outcome.status == "finished":
            fields.update(self._finished_fields(outcome, item))
        self._set(outcome.name, **fields)
        self.save()
        return str(self.entries[outcome.name]["status"])

    def _finished_fields(self, outcome: ImageOutcome, item: Found) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "prompt": outcome.prompt,
            "objective": outcome.objective,
            "text_score": outcome.text_score,
            "image_score": outcome.image_score,
            "report": str(Path(outcome.run_dir or "") / REPORT_NAME),
        }
        if outcome.thumbnail:
            thumb = Path("thumbs") / f"{_file_key(item.name)}.png"
            atomic_write(self.out_dir / thumb, outcome.thumbnail)
            fields["thumbnail"] = thumb.as_posix()
        if item.caption.exists() and not self.overwrite:  # appeared while the image ran
            return {**fields, "status": "skipped", "error": _HAS_CAPTION}
        try:
            text = f"{self.config['prefix']}{outcome.prompt or ''}"
            write_caption(item.caption, text, like=item.path)
        except OSError as error:
            why = f"could not write its caption {item.caption}: {error}"
            return {**fields, "status": "failed", "error": why}
        return fields

    def stopped(self) -> None:
        """The batch stopped (Ctrl-C, an error): the image whose run was under way is
        ``interrupted`` (a rerun continues its run)."""
        for entry in self.entries.values():
            if entry["status"] == "running":
                entry["status"] = "interrupted"

    def _set(self, name: str, **fields: Any) -> None:
        entry = self.entries.setdefault(name, {"name": name, "attempts": 0})
        entry.update(fields)

    def _relative_caption(self, item: Found) -> str:
        return item.caption.relative_to(self.folder).as_posix()

    def save(self) -> None:
        data = {
            "config": self.config,
            "updated": datetime.now(UTC).isoformat(),
            "counts": self.counts(),
            "images": [self.entries[name] for name in sorted(self.entries)],
        }
        atomic_write(self.out_dir / STATE_NAME, json.dumps(data, indent=1).encode())

    def counts(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for entry in self.entries.values():
            found[entry["status"]] = found.get(entry["status"], 0) + 1
        return found

    def summary(self) -> BatchSummary:
        images = [self._image(self.entries[name]) for name in sorted(self.entries)]
        return BatchSummary(
            folder=self.folder,
            out_dir=self.out_dir,
            images=images,
            already_finished=self.already_finished,
            elapsed_s=time.perf_counter() - self.started,
            batch_json=self.out_dir / STATE_NAME,
            batch_csv=self.out_dir / CSV_NAME,
            report=self.out_dir / REPORT_NAME,
        )

    def _image(self, entry: dict[str, Any]) -> BatchImage:
        caption = entry.get("caption") if entry["status"] in ("finished", "skipped") else None
        return BatchImage(
            name=entry["name"],
            status=entry["status"],
            run_id=entry.get("run_id"),
            prompt=entry.get("prompt"),
            objective=entry.get("objective"),
            text_score=entry.get("text_score"),
            image_score=entry.get("image_score"),
            caption=self.folder / caption if caption else None,
            report=entry.get("report"),
            attempts=int(entry.get("attempts", 0)),
            error=entry.get("error"),
        )

    def write_outputs(self) -> BatchSummary:
        """``batch.json``, ``batch.csv`` and the index ``report.html``, from the entries."""
        from arpo.report.batch import render_batch_report

        self.save()
        summary = self.summary()
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for image in summary.images:
            writer.writerow(image.model_dump(mode="json"))
        atomic_write(summary.batch_csv, buffer.getvalue().encode())
        page = render_batch_report(self._report_data(summary))
        atomic_write(summary.report, page.encode())
        return summary

    def _report_data(self, summary: BatchSummary) -> dict[str, Any]:
        rows = []
        for image in summary.images:
            entry = self.entries[image.name]
            report = entry.get("report")
            rows.append(
                {
                    **image.model_dump(mode="json"),
                    "thumbnail": entry.get("thumbnail"),
                    "report": os.path.relpath(report, self.out_dir) if report else None,
                }
            )
        return {
            "folder": str(self.folder),
            "config": self.config,
            "counts": self.counts(),
            "already_finished": self.already_finished,
            "images": rows,
        }


_HAS_CAPTION = "it has a caption file already (--overwrite replaces it)"


def write_caption(path: Path, text: str, *, like: Path | None = None) -> None:
    """Write a caption file whole or not at all (a temporary file beside it, then a rename:
    nothing half-written is left, and a link at ``path`` is replaced, never followed). It
    gets the read and write permissions of the image ``like`` (who may read the image may
    read its caption; the temporary file was private)."""
    atomic_write(path, (text.strip() + "\n").encode("utf-8"))
    if like is not None:
        with contextlib.suppress(OSError):
            os.chmod(path, os.stat(like).st_mode & 0o666)


def _file_key(name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).stem)[:40] or "image"
    return f"{stem}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


@contextlib.contextmanager
def batch_lock(out_dir: Path) -> Iterator[None]:
    """Hold ``out_dir``'s batch lock, or refuse: one batch process per output folder."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / LOCK_NAME, "a+b") as handle:
        try:
            import fcntl
        except ImportError:  # not POSIX: no cross-process lock
            yield
            return
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ArpoError(
                f"another arpo process is running the batch in {out_dir}; wait for it, or give "
                "another --out folder."
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def invert_folder(
    folder: str | os.PathLike[str],
    *,
    out_dir: str | os.PathLike[str] | None = None,
    recursive: bool = False,
    caption_extension: str = ".txt",
    prefix: str = "",
    overwrite: bool = False,
    prompt: str | None = None,
    toolbox: Toolbox | None = None,
    on_progress: ProgressCallback | None = None,
    ray: dict[str, Any] | None = None,
    **options: Any,
) -> BatchSummary:
    """Reverse-prompt every image in ``folder`` (``recursive``: its subfolders too) and write
    ``prefix`` + the best prompt to a caption file beside each (``name.txt`` for
    ``name.png``; ``caption_extension``). Images with a caption already are skipped unless
    ``overwrite``. ``options`` are run options for every image (see
    :func:`~arpo.api.runs.reverse_prompt`).

    Writes ``batch.json`` (kept up to date as the batch goes), ``batch.csv`` and an index
    ``report.html`` into ``out_dir`` (default ``ARPO_HOME/batches/<folder>-<hash>``). Calling
    it again with the same folder and output folder resumes: finished images are skipped,
    interrupted runs continue; a failed image is retried once (at the end) and then listed as
    failed. ``on_progress`` gets ``batch_started`` (total, done), ``run`` (an image's run
    events) and ``image`` (an image's outcome, with done and total) events.

    ``ray``: run the images on Ray workers instead of in this process
    (:func:`run_on_ray_workers`; keys ``address`` and ``workers``, as
    :func:`arpo.api.ray_pool.run_on_ray` takes them).
    """
    from arpo.api.toolboxes import get_toolbox
    from arpo.graph.context import RunOptions

    toolbox = toolbox or get_toolbox()
    root = _check_folder(folder)
    extension = check_caption_extension(caption_extension)
    RunOptions.build(toolbox.option_defaults, **options)  # a bad option fails before any image
    settings = toolbox.settings
    out = (
        Path(out_dir).expanduser().resolve()
        if out_dir
        else default_out_dir(root, settings.home / "batches")
    )
    config = {
        "folder": str(root),
        "models": toolbox.model_identity(),
        "options": {k: v for k, v in options.items() if v is not None},
        "prompt": prompt,
        "recursive": recursive,
        "caption_extension": extension,
        "prefix": prefix,
    }
    with batch_lock(out):
        batch = Batch.open(root, out, config, overwrite)
        excluded = tuple(p.resolve() for p in (out, settings.home))
        found, left_out = scan_folder(
            root, recursive=recursive, extension=extension, exclude=excluded
        )
        todo = batch.plan(found, left_out)
        total = len(found) + len(left_out)
        done = total - len(todo)
        _emit(
            on_progress,
            {"event": "batch_started", "total": total, "done": done, "out_dir": str(out)},
        )
        try:
            if ray is None:
                run_in_process(batch, todo, toolbox, on_progress, done, total)
            else:
                run_on_ray_workers(batch, todo, toolbox, on_progress, done, total, **ray)
        except BaseException:
            batch.stopped()
            batch.write_outputs()
            raise
        return batch.write_outputs()


def run_in_process(
    batch: Batch,
    todo: list[Found],
    toolbox: Toolbox,
    on_progress: ProgressCallback | None,
    done: int,
    total: int,
) -> None:
    """Every job of ``todo`` in this process, in order; a failed one goes once more to the
    end of the queue. The contract for any backend: ``batch.job(item)`` is the work,
    :func:`invert_one` does it (wherever it runs), ``batch.started_run`` records a run's id
    as soon as its ``started`` event arrives, ``batch.attempted`` counts a try, and
    ``batch.record(outcome, item)`` (in the driver, as outcomes arrive) writes the caption
    and saves the state; ``image`` events carry ``done`` of ``total``."""
    queue = deque((item, 1) for item in todo)
    while queue:
        item, attempt = queue.popleft()
        job = batch.job(item)
        batch.attempted(item.name)

        def on_run(event: dict[str, Any], name: str = item.name) -> None:
            if event.get("event") == "started":
                batch.started_run(name, event.get("run_id"))
            _emit(on_progress, {"event": "run", "image": name, "run": event})

        outcome = invert_one(job, toolbox, on_run)
        if outcome.status == "failed" and attempt < MAX_ATTEMPTS:
            log.info("%s failed (%s); it is retried at the end", item.name, outcome.error)
            batch.record(replace(outcome, status="pending"), item)
            queue.append((item, attempt + 1))
            continue
        done += 1
        _image_done(on_progress, batch.record(outcome, item), outcome, done, total)


def run_on_ray_workers(
    batch: Batch,
    todo: list[Found],
    toolbox: Toolbox,
    on_progress: ProgressCallback | None,
    done: int,
    total: int,
    *,
    address: str | None = None,
    workers: int | None = None,
) -> None:
    """:func:`run_in_process`'s contract on Ray workers (:func:`~arpo.api.ray_pool.run_on_ray`):
    each worker loads the models from ``toolbox.settings`` and runs :func:`invert_one`; this
    process records each outcome as it arrives, queues a failed image once more, and records
    an image whose workers kept dying as failed. Each job carries the run id the batch
    recorded for it (:meth:`Batch.job`), so a run interrupted on a worker is continued by the
    next try or the next batch, on any worker that shares the data folder."""
    from arpo.api.ray_pool import run_on_ray

    items = {item.name: item for item in todo}
    queue = _JobQueue(batch, todo)
    finished = [done]

    def image_done(item: Found, outcome: ImageOutcome) -> None:
        finished[0] += 1
        _image_done(on_progress, batch.record(outcome, item), outcome, finished[0], total)

    def on_result(job: ImageJob, outcome: ImageOutcome) -> None:
        item = items[job.name]
        if outcome.status == "failed" and queue.attempts[job.name] < MAX_ATTEMPTS:
            log.info("%s failed (%s); it is retried at the end", item.name, outcome.error)
            batch.record(replace(outcome, status="pending"), item)
            queue.again(item)
            return
        image_done(item, outcome)

    def on_lost(job: ImageJob, why: str) -> None:
        image_done(items[job.name], ImageOutcome(job.name, "failed", error=why))

    run_on_ray(
        queue,
        invert_one,
        on_result,
        settings=toolbox.settings,
        address=address,
        workers=workers,
        on_lost=on_lost,
    )


class _JobQueue:
    """The images still to run, as :func:`~arpo.api.ray_pool.run_on_ray` reads its jobs: one
    at a time as a worker has room, read again after each result, so an image queued once
    more (:meth:`again`) is run too."""

    def __init__(self, batch: Batch, todo: list[Found]) -> None:
        self.batch, self.waiting = batch, deque(todo)
        self.attempts: dict[str, int] = {}

    def again(self, item: Found) -> None:
        self.waiting.append(item)

    def __iter__(self) -> _JobQueue:
        return self

    def __next__(self) -> ImageJob:
        if not self.waiting:
            raise StopIteration
        item = self.waiting.popleft()
        self.attempts[item.name] = self.attempts.get(item.name, 0) + 1
        self.batch.attempted(item.name)
        return self.batch.job(item)


def _image_done(
    on_progress: ProgressCallback | None, status: str, outcome: ImageOutcome, done: int, total: int
) -> None:
    """The ``image`` event of an image the batch has recorded (``status``), ``done`` of
    ``total``: the same from every backend."""
    _emit(
        on_progress,
        {"event": "image", "image": outcome.name, "status": status, "done": done,
         "total": total, "error": outcome.error, "prompt": outcome.prompt},
    )  # fmt: skip


def _emit(on_progress: ProgressCallback | None, event: dict[str, Any]) -> None:
    if on_progress is not None:
        on_progress(event)
