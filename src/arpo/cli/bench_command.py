"""``arpo bench``: compare methods on a set of images."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from arpo.cli.app import PresetOption, app, err, errors, out, say, toolbox_for
from arpo.cli.display import BenchProgress


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
        Path,
        typer.Option(
            "--out", "-o", metavar="FOLDER", help="Bench folder; rerun with it to resume."
        ),
    ],
    methods: Annotated[
        list[str] | None,
        typer.Option(
            "--methods",
            "-m",
            metavar="METHODS",
            help="Comma-separated or repeated: caption, interrogate-fast, interrogate-best, "
            "pez, random-search, arpo-offline, arpo-vanilla, arpo-enhanced; groups: "
            "interrogate, offline (default), all.",
        ),
    ] = None,
    budget: Annotated[
        int | None,
        typer.Option(
            help="Renders per image for the methods that render. Default: a run's default "
            "render budget (32), what users get."
        ),
    ] = None,
    seeds: Annotated[
        int,
        typer.Option(
            metavar="K", help="Replay seeds: each final prompt is rendered with K new seeds."
        ),
    ] = 3,
    seed: Annotated[int, typer.Option(help="Search seed (renders, random choices).")] = 0,
    judge: Annotated[
        str | None,
        typer.Option(
            metavar="CLIP",
            help="The CLIP that scores every similarity column: an open_clip model the search "
            "does not use (ViT-B-32/laion2b_s34b_b79k, local-dir:/path, hf-hub:org/repo), or "
            "'same' for the search's own CLIP (not held out). Default: the preset's held-out "
            "judge (the demo preset ships one); other models must name one.",
        ),
    ] = None,
    against: Annotated[
        str | None,
        typer.Option(
            metavar="METHOD",
            help="The method the others are paired against (default: arpo-offline, else the "
            "first ARPO method benched).",
        ),
    ] = None,
    preset: PresetOption = None,
) -> None:
    """Compare ARPO with the baselines on DATASET: writes results.csv, summary.json (mean and
    95% CI per method) and report.html. Finished image-method pairs are not redone."""
    from arpo.bench import run_bench
    from arpo.bench.summary import markdown_table, paired_markdown

    if preset is None and dataset.startswith("demo:"):
        preset = "demo"
    toolbox = toolbox_for(preset)
    progress = BenchProgress()
    hint = f"Finished pairs are kept in {out_dir}; rerun the same command to resume."
    with errors(lambda: hint if progress.task is not None else None), progress:
        outcome = run_bench(
            dataset,
            out_dir=out_dir,
            methods=methods or ["offline"],
            budget=budget,
            replay_seeds=seeds,
            seed=seed,
            judge=judge,
            reference=against,
            toolbox=toolbox,
            on_progress=progress.update,
        )
    for problem in outcome.problems:
        err.print(
            f"[yellow]left out[/yellow] {problem['image']}: {problem['error']}",
            highlight=False,
            soft_wrap=True,
        )
    out.print(outcome.judge, highlight=False, soft_wrap=True)
    out.print("mean ± 95% CI over images:")
    out.print(markdown_table(outcome.summary), highlight=False, soft_wrap=True)
    paired = paired_markdown(outcome.paired)
    if paired:
        out.print(paired, highlight=False, soft_wrap=True)
    for path in (outcome.results_csv, outcome.summary_json, outcome.report_html):
        say(str(path))
