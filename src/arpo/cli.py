"""The ``arpo`` command line: a thin adapter over :mod:`arpo.api`.

Errors arpo understands print as one line on stderr with a non-zero exit code; ``--verbose``
adds logs (and tracebacks for unexpected errors).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Self

import typer
from rich.console import Console

from arpo.config import Settings
from arpo.errors import ArpoError

app = typer.Typer(
    name="arpo",
    help="Find the prompt inside an image: Automatic Reverse Prompt Optimization.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

PresetOption = Annotated[
    str | None,
    typer.Option(
        "--preset",
        help="'demo': the offline demo world (procedural renderer, small trained CLIP); "
        "'tiny': tiny random-weight models, a smoke test whose images are noise "
        "(default: ARPO_PRESET, else the configured models).",
    ),
]
_state: dict[str, bool] = {"verbose": False}


@app.callback()
def _root(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log progress to stderr.")
    ] = False,
) -> None:
    _state["verbose"] = verbose
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _toolbox(preset: str | None) -> Any:
    from arpo.api import get_toolbox

    overrides: dict[str, Any] = {"preset": preset} if preset else {}
    try:
        settings = Settings(**overrides)
    except ValueError as error:  # pydantic ValidationError
        raise typer.BadParameter(str(error).splitlines()[-1]) from None
    return get_toolbox(settings)


@contextmanager
def _errors(resume_hint: Callable[[], str | None] = lambda: None) -> Iterator[None]:
    """One line per error, and the exit code it asks for; no tracebacks for known errors."""
    try:
        yield
    except ArpoError as error:
        hint = resume_hint()
        err.print(f"[red]error:[/red] {error}", highlight=False, soft_wrap=True)
        if hint:
            err.print(hint, highlight=False, soft_wrap=True)
        raise typer.Exit(error.exit_code) from None
    except KeyboardInterrupt:
        hint = resume_hint()
        err.print("interrupted." + (f" {hint}" if hint else ""), highlight=False)
        raise typer.Exit(130) from None
    except Exception as error:
        if _state["verbose"]:
            raise
        err.print(
            f"[red]internal error:[/red] {type(error).__name__}: {error} "
            "(rerun with --verbose for the traceback, and please report it)",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1) from None


@app.command()
def invert(
    image: Annotated[
        Path | None, typer.Argument(help="The reference image (PNG, JPEG, WebP...).")
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Run directory (default: a new folder in ARPO_HOME/runs)."
        ),
    ] = None,
    resume_id: Annotated[
        str | None, typer.Option("--resume", help="Continue an interrupted run by its id.")
    ] = None,
    prompt: Annotated[
        str | None, typer.Option("--prompt", "-p", help="Starting prompt (default: a caption).")
    ] = None,
    strategy: Annotated[
        str | None,
        typer.Option(help="auto, vanilla, enhanced or offline (auto: enhanced with an LLM)."),
    ] = None,
    iterations: Annotated[
        int | None, typer.Option("--iterations", "-n", help="Maximum iterations.")
    ] = None,
    candidates: Annotated[int | None, typer.Option(help="Candidate prompts per iteration.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the renders.")] = None,
    images_per_prompt: Annotated[
        int | None, typer.Option(help="Renders per prompt (seeds seed..).")
    ] = None,
    steps: Annotated[int | None, typer.Option(help="Diffusion steps.")] = None,
    guidance: Annotated[float | None, typer.Option(help="Classifier-free guidance scale.")] = None,
    width: Annotated[int | None, typer.Option(help="Render width (multiple of 8).")] = None,
    height: Annotated[int | None, typer.Option(help="Render height (multiple of 8).")] = None,
    negative_prompt: Annotated[
        str | None, typer.Option(help="Negative prompt for every render.")
    ] = None,
    target_score: Annotated[
        float | None, typer.Option(help="Stop once the best score reaches this.")
    ] = None,
    patience: Annotated[
        int | None, typer.Option(help="Stop after this many iterations without gain (0: never).")
    ] = None,
    time_budget: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
    rerank_top_k: Annotated[
        int | None, typer.Option(help="Render the top k candidates and pick by image similarity.")
    ] = None,
    preset: PresetOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Reverse-prompt IMAGE: search for a prompt that recreates it. Writes a run directory with
    result.json, every render and report.html."""
    from arpo import api

    if (image is None) == (resume_id is None):
        raise typer.BadParameter("give an IMAGE to invert, or --resume RUN_ID (not both).")
    toolbox = _toolbox(preset)
    progress = _Progress()
    with _errors(progress.resume_hint), progress:
        if resume_id:
            result = api.resume(resume_id, toolbox=toolbox, on_progress=progress.update)
        else:
            result = api.reverse_prompt(
                image,
                prompt=prompt,
                out_dir=out_dir,
                toolbox=toolbox,
                on_progress=progress.update,
                strategy=strategy,
                iterations=iterations,
                candidates=candidates,
                seed=seed,
                images_per_prompt=images_per_prompt,
                steps=steps,
                guidance=guidance,
                width=width,
                height=height,
                negative_prompt=negative_prompt,
                target_score=target_score,
                patience=patience,
                time_budget_s=time_budget,
                rerank_top_k=rerank_top_k,
            )
    if as_json:
        out.print_json(json.dumps(_result_summary(result)))
        return
    out.print(
        f"[bold]best prompt[/bold] (text score {result.best_text_score:.4f}, "
        f"image score {_fmt(result.best_image_score)}):"
    )
    out.print(result.best_prompt, highlight=False, soft_wrap=True)
    out.print(
        f"run {result.run_id}: {result.iterations} iterations, stopped by {result.stop_reason}"
    )
    out.print(f"report: {result.report}", highlight=False, soft_wrap=True)


@app.command()
def generate(
    prompt: Annotated[str, typer.Argument(help="The prompt to render.")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder for the images.")] = Path(
        "."
    ),
    seed: Annotated[int, typer.Option(help="First seed.")] = 0,
    count: Annotated[
        int, typer.Option("--count", "-c", help="Images to render (seeds seed..).")
    ] = 1,
    steps: Annotated[int | None, typer.Option(help="Diffusion steps.")] = None,
    guidance: Annotated[float | None, typer.Option(help="Classifier-free guidance scale.")] = None,
    width: Annotated[int | None, typer.Option(help="Width (multiple of 8).")] = None,
    height: Annotated[int | None, typer.Option(help="Height (multiple of 8).")] = None,
    negative_prompt: Annotated[str | None, typer.Option(help="Negative prompt.")] = None,
    preset: PresetOption = None,
) -> None:
    """Render PROMPT with the configured text-to-image model."""
    from arpo import api

    toolbox = _toolbox(preset)
    with _errors(), err.status("rendering..."):
        paths = api.generate(
            prompt,
            seed=seed,
            count=count,
            out_dir=out_dir,
            toolbox=toolbox,
            steps=steps,
            guidance=guidance,
            width=width,
            height=height,
            negative_prompt=negative_prompt,
        )
    for path in paths:
        out.print(str(path), highlight=False, soft_wrap=True)


@app.command()
def score(
    image: Annotated[Path, typer.Argument(help="The image to score against.")],
    prompts: Annotated[list[str], typer.Argument(help="One or more prompts.")],
    preset: PresetOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """CLIP similarity of each PROMPT to IMAGE, best first."""
    from arpo import api

    toolbox = _toolbox(preset)
    with _errors():
        ranked = api.score(image, prompts, toolbox=toolbox)
    if as_json:
        out.print_json(json.dumps([{"prompt": p, "score": s} for p, s in ranked]))
        return
    for prompt, value in ranked:
        out.print(f"{value:.4f}  {prompt}", highlight=False, soft_wrap=True)


@app.command()
def demo(
    scene: Annotated[
        int | None, typer.Option(help="Held-out scene number (default: a random one).")
    ] = None,
    prompt: Annotated[
        str | None, typer.Option("--prompt", "-p", help="Draw this prompt instead of a scene.")
    ] = None,
    objects: Annotated[int, typer.Option(help="Objects in the scene (1-3).")] = 1,
    iterations: Annotated[
        int | None, typer.Option("--iterations", "-n", help="Maximum iterations.")
    ] = None,
    candidates: Annotated[int | None, typer.Option(help="Candidate prompts per iteration.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the renders.")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", "-o", help="Run directory.")] = None,
) -> None:
    """Watch arpo recover a prompt it cannot know: the demo world (offline, no GPU, no key)
    draws a scene, and the loop reverse-prompts it from the image alone."""
    from arpo import api

    progress = _Progress()
    with _errors(progress.resume_hint), progress:
        outcome = api.demo(
            scene=scene,
            prompt=prompt,
            objects=objects,
            out_dir=out_dir,
            toolbox=_toolbox("demo"),
            on_progress=progress.update,
            iterations=iterations,
            candidates=candidates,
            seed=seed,
        )
    result = outcome.result
    out.print(
        f"[bold]true prompt[/bold]       {outcome.true_prompt}", highlight=False, soft_wrap=True
    )
    out.print(
        f"[bold]recovered prompt[/bold]  {result.best_prompt}", highlight=False, soft_wrap=True
    )
    out.print(
        f"attributes recovered: {len(outcome.hits)}/{len(outcome.hits) + len(outcome.misses)} "
        f"({outcome.recall:.0%}; the initial interrogation had {outcome.initial_recall:.0%})"
    )
    if outcome.hits:
        out.print(
            "[green]hits:[/green] " + ", ".join(outcome.hits), highlight=False, soft_wrap=True
        )
    if outcome.misses:
        out.print(
            "[red]misses:[/red] " + ", ".join(outcome.misses), highlight=False, soft_wrap=True
        )
    out.print(f"report: {result.report}", highlight=False, soft_wrap=True)


@app.command()
def bench(
    dataset: Annotated[
        str,
        typer.Argument(
            help="A folder of images (a sidecar NAME.txt is an image's true prompt), or "
            "demo:N (N held-out demo-world scenes; demo:N:K for K objects each)."
        ),
    ],
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Bench folder; rerun with it to resume.")
    ],
    methods: Annotated[
        list[str] | None,
        typer.Option(
            "--methods",
            "-m",
            help="Comma-separated or repeated: caption, interrogate-fast, interrogate-best, "
            "pez, random-search, arpo-offline, arpo-vanilla, arpo-enhanced; groups: "
            "interrogate, offline (default), all.",
        ),
    ] = None,
    budget: Annotated[
        int, typer.Option(help="Renders per image for the methods that render.")
    ] = 64,
    seeds: Annotated[
        int, typer.Option(help="Replay seeds: each final prompt is rendered with K new seeds.")
    ] = 3,
    seed: Annotated[int, typer.Option(help="Search seed (renders, random choices).")] = 0,
    preset: PresetOption = None,
) -> None:
    """Compare ARPO with the baselines on DATASET: writes results.csv, summary.json (mean and
    95% CI per method) and report.html. Finished image-method pairs are not redone."""
    from arpo.bench import run_bench
    from arpo.bench.summary import markdown_table

    if preset is None and dataset.startswith("demo:"):
        preset = "demo"
    toolbox = _toolbox(preset)
    progress = _BenchProgress()
    hint = f"Finished pairs are kept in {out_dir}; rerun the same command to resume."
    with _errors(lambda: hint if progress.task is not None else None), progress:
        outcome = run_bench(
            dataset,
            out_dir=out_dir,
            methods=methods or ["offline"],
            budget=budget,
            replay_seeds=seeds,
            seed=seed,
            toolbox=toolbox,
            on_progress=progress.update,
        )
    for problem in outcome.problems:
        err.print(
            f"[yellow]left out[/yellow] {problem['image']}: {problem['error']}",
            highlight=False,
            soft_wrap=True,
        )
    out.print("mean ± 95% CI over images:")
    out.print(markdown_table(outcome.summary), highlight=False, soft_wrap=True)
    for path in (outcome.results_csv, outcome.summary_json, outcome.report_html):
        out.print(str(path), highlight=False, soft_wrap=True)


class _LiveDisplay:
    """A rich ``Progress`` display, used as a context manager."""

    progress: Any

    def __enter__(self) -> Self:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)


class _BenchProgress(_LiveDisplay):
    """One bar over every (image, method) pair of a bench."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]bench"),
            MofNCompleteColumn(),
            BarColumn(bar_width=24),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[last]}"),
            console=err,
        )
        self.task: Any = None

    def update(self, event: dict[str, Any]) -> None:
        if event.get("event") == "started":
            self.task = self.progress.add_task("bench", total=event["total"], last="")
        elif event.get("event") == "pair" and self.task is not None:
            last = f"{event['method']} on {event['image']}: {event['status']}"
            self.progress.update(self.task, completed=event["done"], last=last)


class _Progress(_LiveDisplay):
    """Live display of a run: iteration bar, best score, current prompt."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.table import Column

        self.run_id: str | None = None
        self.progress = Progress(
            TextColumn("[bold]iteration", table_column=Column(no_wrap=True)),
            MofNCompleteColumn(table_column=Column(no_wrap=True)),
            BarColumn(bar_width=16),
            TextColumn("best {task.fields[best]}", table_column=Column(no_wrap=True)),
            TimeElapsedColumn(table_column=Column(no_wrap=True)),
            TextColumn(
                "{task.fields[prompt]}",
                table_column=Column(ratio=1, no_wrap=True, overflow="ellipsis"),
            ),
            console=err,
            transient=False,
            expand=True,
        )
        self.task: Any = None

    def update(self, event: dict[str, Any]) -> None:
        self.run_id = event.get("run_id", self.run_id)
        if event.get("event") == "started":
            self.task = self.progress.add_task(
                "run", total=event["iterations"], best="-", prompt="captioning..."
            )
            run_dir = Path(event["run_dir"])
            self.progress.console.print(f"run {self.run_id} -> {run_dir}", highlight=False)
            self.progress.console.print(
                f"reference image: {run_dir / 'reference.png'}", highlight=False
            )
            return
        if self.task is None:
            return
        prompt = event.get("prompt") or ""
        self.progress.update(
            self.task,
            completed=event.get("iteration", 0) + 1,
            best=f"{event.get('best_text_score', 0):.4f}",
            prompt=prompt,
        )

    def resume_hint(self) -> str | None:
        if self.run_id is None:
            return None
        return f"The run is saved; continue it with: arpo invert --resume {self.run_id}"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _result_summary(result: Any) -> dict[str, Any]:
    return {
        "run_id": result.run_id,
        "best_prompt": result.best_prompt,
        "best_text_score": result.best_text_score,
        "best_image_score": result.best_image_score,
        "initial_prompt": result.initial_prompt,
        "iterations": result.iterations,
        "stop_reason": result.stop_reason,
        "strategy": result.strategy,
        "run_dir": str(result.run_dir),
        "best_render": str(result.best_render),
        "report": str(result.report),
    }


def _changes(values: list[str]) -> dict[str, str]:
    changes = {}
    for value in values:
        name, sep, text = value.partition("=")
        if not sep or not name.strip():
            raise typer.BadParameter(
                f"'{value}' is not COMPONENT=TEXT (e.g. --set style='ukiyo-e woodblock print')."
            )
        changes[name.strip()] = text
    return changes


def _remix_summary(remix: Any) -> dict[str, Any]:
    return {
        "remix_id": remix.remix_id,
        "prompt": remix.prompt,
        "negative_prompt": remix.negative_prompt,
        "parts": remix.parts.as_dict(),
        "cut": remix.cut,
        "seed": remix.seed,
        "render": str(remix.render),
        "sources": [{**s, "render": str(s["render"])} for s in remix.sources],
        "notes": remix.notes,
        "report": str(remix.report),
    }


def _print_remix(remix: Any, as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(_remix_summary(remix)))
        return
    for source in remix.sources:
        out.print(f"{source['role']}: {source['prompt']}", highlight=False, soft_wrap=True)
    out.print(f"[bold]{remix.kind}:[/bold] {remix.prompt}", highlight=False, soft_wrap=True)
    for note in remix.notes:
        out.print(f"  {note}", highlight=False, soft_wrap=True)
    out.print(f"render (seed {remix.seed}): {remix.render}", highlight=False, soft_wrap=True)
    out.print(f"report: {remix.report}", highlight=False, soft_wrap=True)


JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
SeedOption = Annotated[int | None, typer.Option(help="Seed (default: the original run's, else 0).")]


@app.command()
def edit(
    source: Annotated[str, typer.Argument(help="A prompt, or the id of a finished run.")],
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            "-s",
            help="Replace a component: COMPONENT=TEXT (content, setting, composition, medium, "
            "style, lighting, palette, detail, negative); repeatable; empty TEXT clears it.",
        ),
    ] = None,
    instruction: Annotated[
        str | None, typer.Option("--instruction", "-i", help="Free text, e.g. 'make it night'.")
    ] = None,
    seed: SeedOption = None,
    no_llm: Annotated[bool, typer.Option("--no-llm", help="Edit offline.")] = False,
    preset: PresetOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change parts of a prompt (or of a run's best prompt) and render it with the same seed."""
    from arpo import api

    changes = _changes(set_ or [])
    toolbox = _toolbox(preset)
    with _errors(), err.status("editing..."):
        remix = api.edit_prompt(
            source, changes, instruction, seed=seed, toolbox=toolbox, use_llm=not no_llm
        )
    _print_remix(remix, as_json)


@app.command()
def fuse(
    content_from: Annotated[
        str, typer.Argument(help="Content source: an image file, a run id or a prompt.")
    ],
    style_from: Annotated[
        str, typer.Argument(help="Style source: an image file, a run id or a prompt.")
    ],
    seed: SeedOption = None,
    iterations: Annotated[
        int | None, typer.Option(help="Iterations when an image is reverse-prompted first.")
    ] = None,
    no_llm: Annotated[bool, typer.Option("--no-llm", help="Decompose offline.")] = False,
    preset: PresetOption = None,
    as_json: JsonOption = False,
) -> None:
    """The content of CONTENT_FROM in the medium, style, lighting and palette of STYLE_FROM."""
    from arpo import api

    toolbox = _toolbox(preset)
    with _errors(), err.status("fusing (images are reverse-prompted first)..."):
        remix = api.fuse(
            content_from,
            style_from,
            seed=seed,
            toolbox=toolbox,
            use_llm=not no_llm,
            reverse_options={"iterations": iterations},
        )
    _print_remix(remix, as_json)


@app.command()
def vary(
    source: Annotated[str, typer.Argument(help="A prompt, or the id of a finished run.")],
    count: Annotated[int, typer.Option("--count", "-c", help="Variations (seeds).")] = 4,
    seed: Annotated[int | None, typer.Option(help="First seed (default: random).")] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", "-o", help="Copy the images into this folder.")
    ] = None,
    preset: PresetOption = None,
    as_json: JsonOption = False,
) -> None:
    """Render a prompt (or a run's best prompt) with COUNT seeds in one batch."""
    import shutil

    from arpo import api

    toolbox = _toolbox(preset)
    with _errors(), err.status("rendering variations..."):
        result = api.vary(source, count=count, seed=seed, toolbox=toolbox)
        paths = result.renders
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            paths = [out_dir / f"seed-{s}.png" for s in result.seeds]
            for render, copy in zip(result.renders, paths, strict=True):
                shutil.copyfile(render, copy)
    if as_json:
        images = [{"seed": s, "path": str(p)} for s, p in zip(result.seeds, paths, strict=True)]
        out.print_json(json.dumps({"prompt": result.prompt, "images": images}))
        return
    for image_seed, path in zip(result.seeds, paths, strict=True):
        out.print(f"seed {image_seed}: {path}", highlight=False, soft_wrap=True)


@app.command()
def serve(
    transport: Annotated[
        str, typer.Option(help="stdio (for desktop assistants) or http (streamable HTTP, /mcp).")
    ] = "stdio",
    host: Annotated[
        str, typer.Option(help="HTTP bind address; other than 127.0.0.1 needs ARPO_AUTH_TOKEN.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP port.")] = 8000,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(help="Extra Host header value the HTTP server answers to (repeatable)."),
    ] = None,
    warm_up: Annotated[
        bool, typer.Option("--warm-up", help="Load the models in the background at start.")
    ] = False,
    preset: PresetOption = None,
) -> None:
    """Run the MCP server: assistants reverse-prompt, render, score and caption images."""
    from arpo import server

    if transport not in ("stdio", "http"):
        raise typer.BadParameter(f"--transport {transport!r}: use stdio or http.")
    settings = _toolbox(preset).settings
    with _errors():
        server.serve(
            transport,  # type: ignore[arg-type]
            host=host,
            port=port,
            settings=settings,
            allowed_hosts=allowed_host or (),
            warm_up=warm_up,
        )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
