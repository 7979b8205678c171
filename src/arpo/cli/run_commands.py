"""Commands about runs: ``invert`` (start or resume), ``demo``, ``runs list|show|rm``, ``gc``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from arpo.cli.app import (
    JsonOption,
    PresetOption,
    app,
    errors,
    fmt,
    out,
    print_json,
    run_toolbox,
    say,
    settings_for,
    toolbox_for,
)
from arpo.cli.display import RunProgress
from arpo.cli.readable import ReadableTyper

WIDTH_HELP = (
    "Render width (a multiple of the model family's; default: the family's native area at "
    "the reference's aspect ratio)."
)
HEIGHT_HELP = "Render height (a multiple of the model family's; default: as for --width)."


@app.command()
def invert(
    image: Annotated[
        Path | None,
        typer.Argument(
            metavar="IMAGE|FOLDER",
            help="The reference image (PNG, JPEG, WebP...), or a folder of them: a run per "
            "image and a caption file beside each (NAME.txt for NAME.png).",
        ),
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            metavar="FOLDER",
            help="Run folder, new or empty (default: a new one in ARPO_HOME/runs). For a "
            "folder of images: the batch folder (batch.json, batch.csv, report.html; default "
            "ARPO_HOME/batches/NAME-HASH); the same one again resumes.",
        ),
    ] = None,
    recursive: Annotated[
        bool,
        typer.Option("--recursive", "-r", help="FOLDER: the images in its subfolders too."),
    ] = False,
    caption_extension: Annotated[
        str,
        typer.Option(
            metavar="EXT", help="FOLDER: the caption files' extension (NAME.txt beside NAME.png)."
        ),
    ] = ".txt",
    prefix: Annotated[
        str,
        typer.Option(
            metavar="TEXT",
            help="FOLDER: text before each caption, as written (a trigger word: 'sks, ').",
        ),
    ] = "",
    ray: Annotated[
        bool,
        typer.Option(
            "--ray",
            help="FOLDER: run the images on Ray workers (pip install 'arpo[ray]'): the cluster "
            "at --ray-address or ARPO_RAY_ADDRESS, else a local Ray instance.",
        ),
    ] = False,
    ray_address: Annotated[
        str | None,
        typer.Option(
            metavar="ADDRESS", help="FOLDER with --ray: auto, HOST:6379, ray://HOST:10001."
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            help="FOLDER with --ray: how many workers (default: one per GPU, else CPU).",
        ),
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            help="FOLDER: replace caption files that exist (default: skip images that have one)."
        ),
    ] = False,
    resume_id: Annotated[
        str | None,
        typer.Option(
            "--resume",
            metavar="RUN_ID",
            help="Continue an interrupted run by its id (its own models).",
        ),
    ] = None,
    prompt: Annotated[
        str | None, typer.Option("--prompt", "-p", help="Starting prompt (default: a caption).")
    ] = None,
    strategy: Annotated[
        str | None,
        typer.Option(
            metavar="NAME", help="auto, vanilla, enhanced or offline (auto: enhanced with an LLM)."
        ),
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
    width: Annotated[int | None, typer.Option(help=WIDTH_HELP)] = None,
    height: Annotated[int | None, typer.Option(help=HEIGHT_HELP)] = None,
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
    budget: Annotated[
        int | None,
        typer.Option(
            metavar="R",
            help="Render budget: stop before an iteration whose renders could exceed R renders "
            "(cache hits are free). Default: 32, for every model; 0: no budget.",
        ),
    ] = None,
    rerank_top_k: Annotated[
        int | None, typer.Option(help="Render the top k candidates and pick by image similarity.")
    ] = None,
    max_cost: Annotated[
        float | None,
        typer.Option(
            help="US dollars the renders may cost (images API: price per image, "
            "ARPO_T2I_PRICE); the run stops, resumable, before renders that would pass it. "
            "With --resume: the new limit."
        ),
    ] = None,
    restarts: Annotated[
        int | None,
        typer.Option(
            help="Where patience would stop, restart from the local captioner's next-best "
            "caption, up to this many times (default 2; 0: never)."
        ),
    ] = None,
    caption_weight: Annotated[
        float | None,
        typer.Option(
            help="How much the local captioner's judgement (its likelihood of a prompt as "
            "the image's caption) weighs beside CLIP's when choosing (default 0.1; 0: CLIP "
            "alone)."
        ),
    ] = None,
    preset: PresetOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Reverse-prompt IMAGE: search for a prompt that recreates it. Writes a run directory with
    result.json, every render and report.html. Given a FOLDER: a run per image, its best
    prompt written beside it as a caption file (kohya-ss style); rerun to resume."""
    from arpo import api

    if (image is None) == (resume_id is None):
        raise typer.BadParameter("give an IMAGE to invert, or --resume RUN_ID (not both).")
    options: dict[str, Any] = {
        "strategy": strategy,
        "iterations": iterations,
        "candidates": candidates,
        "seed": seed,
        "images_per_prompt": images_per_prompt,
        "steps": steps,
        "guidance": guidance,
        "width": width,
        "height": height,
        "negative_prompt": negative_prompt,
        "target_score": target_score,
        "patience": patience,
        "time_budget_s": time_budget,
        "budget": budget,
        "rerank_top_k": rerank_top_k,
        "restarts": restarts,
        "caption_weight": caption_weight,
        "max_cost": max_cost,
    }
    if image is not None and image.is_dir():
        from arpo.cli.batch_command import invert_folder_command

        invert_folder_command(
            image,
            out_dir=out_dir,
            recursive=recursive,
            caption_extension=caption_extension,
            prefix=prefix,
            overwrite=overwrite,
            prompt=prompt,
            preset=preset,
            as_json=as_json,
            options=options,
            ray={"address": ray_address, "workers": workers} if ray else None,
        )
        return
    _refuse_folder_options(recursive, caption_extension, prefix, overwrite)
    if ray or ray_address or workers is not None:
        raise typer.BadParameter("--ray, --ray-address and --workers only apply to a FOLDER")
    toolbox = run_toolbox(preset) if resume_id else toolbox_for(preset)
    progress = RunProgress()
    with errors(progress.resume_hint), progress:
        if resume_id:
            result = api.resume(
                resume_id,
                toolbox=toolbox,
                settings=settings_for(),
                on_progress=progress.update,
                max_cost=max_cost,
            )
        else:
            result = api.reverse_prompt(
                image,
                prompt=prompt,
                out_dir=out_dir,
                toolbox=toolbox,
                on_progress=progress.update,
                **options,
            )
    if as_json:
        print_json(result.model_dump(mode="json", exclude={"history"}))
        return
    out.print(
        f"[bold]best prompt[/bold] ({result.objective} objective; text score "
        f"{result.best_text_score:.4f}, image score {fmt(result.best_image_score)}):"
    )
    say(result.best_prompt)
    spent = f"{result.renders_spent} renders"
    if result.budget is not None:
        spent += f" of {result.budget}"
    if result.cost_usd is not None:
        spent += f", ${result.cost_usd:.2f}"
        if result.max_cost is not None:
            spent += f" of ${result.max_cost:.2f}"
    out.print(
        f"run {result.run_id}: {result.iterations} iterations, {spent}, "
        f"stopped by {result.stop_reason}"
    )
    if result.stop_reason == "max_cost":
        say(f"resume with a higher limit: arpo invert --resume {result.run_id} --max-cost DOLLARS")
    if not result.reproducible:
        say("renders are not reproducible: the text-to-image service takes no seed")
    say(f"report: {result.report}")


def _refuse_folder_options(
    recursive: bool, caption_extension: str, prefix: str, overwrite: bool
) -> None:
    given = [
        name
        for name, used in (
            ("--recursive", recursive),
            ("--caption-extension", caption_extension != ".txt"),
            ("--prefix", bool(prefix)),
            ("--overwrite", overwrite),
        )
        if used
    ]
    if given:
        raise typer.BadParameter(
            f"{', '.join(given)} only apply{'' if len(given) > 1 else 'ies'} to a FOLDER of "
            "images; give a folder, or drop them."
        )


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
    budget: Annotated[
        int | None, typer.Option(help="Render budget (cache hits free; see arpo invert).")
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", "-o", metavar="FOLDER", help="Run directory.")
    ] = None,
) -> None:
    """Watch arpo recover a prompt it cannot know: the demo world (offline, no GPU, no key)
    draws a scene, and the loop reverse-prompts it from the image alone."""
    from arpo.demo.run import run_demo

    toolbox = toolbox_for("demo")
    progress = RunProgress()
    with errors(progress.resume_hint), progress:
        outcome = run_demo(
            scene=scene,
            prompt=prompt,
            objects=objects,
            out_dir=out_dir,
            toolbox=toolbox,
            on_progress=progress.update,
            iterations=iterations,
            candidates=candidates,
            seed=seed,
            budget=budget,
        )
    result = outcome.result
    say(f"[bold]true prompt[/bold]       {outcome.true_prompt}")
    if outcome.seed_chosen:
        say(
            "  chosen by the seed, not in your prompt (not judged): "
            + ", ".join(outcome.seed_chosen)
        )
    say(f"[bold]recovered prompt[/bold]  {result.best_prompt}")
    out.print(
        f"attributes recovered: {len(outcome.hits)}/{len(outcome.hits) + len(outcome.misses)} "
        f"(recall {outcome.recall:.0%}, precision {outcome.precision:.0%}, F1 {outcome.f1:.0%}; "
        f"the first prompt had recall {outcome.initial_recall:.0%}, "
        f"F1 {outcome.initial_f1:.0%})"
    )
    if outcome.hits:
        say("[green]hits:[/green] " + ", ".join(outcome.hits))
    if outcome.misses:
        say("[red]misses:[/red] " + ", ".join(outcome.misses))
    if outcome.wrong:
        say("[red]wrong:[/red] " + ", ".join(outcome.wrong))
    if outcome.hidden:
        say("[dim]not shown by the render, not judged:[/dim] " + ", ".join(outcome.hidden))
    if outcome.seed_hits:
        say(
            "[dim]also recovered, chosen by the seed (not judged):[/dim] "
            + ", ".join(outcome.seed_hits)
        )
    say(f"report: {result.report}")


runs_app = ReadableTyper(
    help="Earlier runs: list them (the default), show one, delete some.",
    invoke_without_command=True,
    no_args_is_help=False,
)
app.add_typer(runs_app, name="runs")
LimitOption = Annotated[int, typer.Option("--limit", "-n", help="How many runs (newest first).")]


@runs_app.callback()
def _runs(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        runs_list()


@runs_app.command("list")
def runs_list(limit: LimitOption = 20, as_json: JsonOption = False) -> None:
    """Runs newest first: id, status, whether it can be resumed, best score and prompt."""
    from arpo import api

    with errors():
        listing = api.list_runs(limit, settings=settings_for())
    if as_json:
        print_json(listing.model_dump(mode="json"))
        return
    if not listing.runs:
        say("no runs yet; start one with `arpo invert IMAGE` or `arpo demo`.")
        return
    for run in listing.runs:
        status = run.status + (" (resumable)" if run.resumable else "")
        best = run.best_text_score if run.objective == "text" else run.best_image_score
        score = f"{run.objective} {fmt(best)}"
        say(f"{run.run_id}  {status:<24} {score:<12}  {run.best_prompt or ''}")


@runs_app.command("show")
def runs_show(
    run_id: Annotated[str, typer.Argument(help="The run id (see `arpo runs list`).")],
    as_json: JsonOption = False,
) -> None:
    """A run's status, models, options, best prompt and every step."""
    from arpo import api

    with errors():
        details = api.run_details(run_id, settings=settings_for())
    if as_json:
        print_json(details.model_dump(mode="json"))
        return
    _print_details(details)


def _print_details(details: Any) -> None:
    status = details.status + (" (resumable: arpo invert --resume ID)" if details.resumable else "")
    say(f"[bold]run {details.run_id}[/bold]  {status}")
    if details.lease:
        say(f"running in {details.lease}")
    if details.error:
        say(f"[red]error:[/red] {details.error}")
    say(f"created {details.created}; folder {details.run_dir}")
    say(
        "models: "
        + ", ".join(f"{k} {v}" for k, v in details.models.items() if v and isinstance(v, str))
    )
    say(f"best prompt: {details.best_prompt or '-'}")
    say(
        f"best text score {fmt(details.best_text_score)}, image score "
        f"{fmt(details.best_image_score)}; {details.iterations} iterations, "
        f"stopped by {details.stop_reason or '-'}"
    )
    for step in details.history:
        say(
            f"  {step.iteration:>3}  text {fmt(step.text_score)}  image {fmt(step.image_score)}  "
            f"{step.prompt or ''}"
        )


@runs_app.command("rm")
def runs_rm(
    run_ids: Annotated[list[str], typer.Argument(help="Run ids to delete.")],
) -> None:
    """Delete runs: record, checkpoints, and the files the run wrote (never other files in an
    --out folder). Their images stay in the store until `arpo gc`."""
    from arpo import api

    with errors():
        for run_id in run_ids:
            deleted = api.delete_run(run_id, settings=settings_for())
            say(f"deleted run {deleted.run_id} ({deleted.run_dir})")


@app.command()
def gc(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", "-n", help="Only say what would be removed.")
    ] = False,
    grace: Annotated[
        float, typer.Option(help="Keep images younger than this many minutes.")
    ] = 60.0,
    as_json: JsonOption = False,
) -> None:
    """Remove stored images no run, checkpoint or remix refers to (and render-cache entries
    whose image is gone). Refuses while a run is running."""
    from arpo import api

    with errors():
        collected = api.collect_garbage(
            settings=settings_for(), dry_run=dry_run, grace_s=grace * 60
        )
    if as_json:
        print_json(collected.model_dump(mode="json"))
        return
    verb = "would remove" if dry_run else "removed"
    say(
        f"{verb} {collected.artifacts} images ({collected.bytes / 1e6:.1f} MB) and "
        f"{collected.cache_records} cache entries; kept {collected.kept} images."
    )
