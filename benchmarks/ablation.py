"""What each part of the offline search contributes: ``arpo-offline`` with one part taken away
at a time, on the same held-out demo scenes, paired against the whole.

    OMP_NUM_THREADS=1 python benchmarks/ablation.py [--scenes 150] [--out DIR]

Rows (each a bench of ``arpo-offline`` at the default render budget, judged by the held-out
judge, in its own folder under --out, so a rerun resumes):

* ``arpo-offline``: the defaults (the demo captioner's caption as the first prompt, restarts
  from its next-best captions), benched with every offline method (its table is printed
  first);
* ``no restarts``: ``restarts=0`` (the run stops where patience says);
* ``no captioner judge``: ``caption_weight=0`` (the captioner writes the first prompt and the
  restarts, but CLIP alone chooses among the candidates);
* ``no captioner``: ``ARPO_CAPTION_MODEL=none`` (the first prompt is CLIP interrogation, no
  hypotheses to restart from: the loop as it was before the captioner);
* ``captioner alone``: the ``caption`` method, the first prompt without any search.

Each variant minus the whole, on the same images: attribute F1 and judged replay (mean and 95%
CI of the per-image difference).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

METRICS = ("attribute_f1", "image_score", "renders")  # image_score: judged replay
VARIANTS: dict[str, tuple[dict[str, Any], dict[str, Any], str]] = {
    # name: (settings, run options, method); the whole is benched with every offline method
    "arpo-offline": ({}, {}, "offline"),
    "no restarts": ({}, {"restarts": 0}, "arpo-offline"),
    "no captioner judge": ({}, {"caption_weight": 0}, "arpo-offline"),
    "no captioner": ({"caption_model": "none"}, {}, "arpo-offline"),
    "captioner alone": ({}, {}, "caption"),
}


def run(scenes: int, out: Path, only: list[str] | None = None) -> None:
    from arpo.bench import run_bench
    from arpo.bench.summary import (
        format_difference,
        format_mean_ci,
        markdown_table,
        paired_markdown,
        paired_summary,
    )
    from arpo.config import Settings
    from arpo.tools.toolbox import Toolbox

    rows: list[dict[str, Any]] = []
    means: dict[str, dict[str, Any]] = {}
    for name, (settings, options, method) in VARIANTS.items():
        if only and name not in only:
            continue
        folder = out / name.replace(" ", "-")
        home = out / "arpo-home" / folder.name  # one per variant: benches may run at once
        toolbox = Toolbox(Settings(home=home, preset="demo", **settings))
        outcome = run_bench(
            f"demo:{scenes}", out_dir=folder, methods=[method], options=options, toolbox=toolbox
        )
        row_method = "arpo-offline" if method == "offline" else method
        rows += [{**row, "method": name} for row in outcome.rows if row["method"] == row_method]
        means[name] = outcome.summary[row_method]["metrics"]
        if method == "offline":
            print(outcome.judge)
            print(markdown_table(outcome.summary))
            print(paired_markdown(outcome.paired))
    if only:
        return
    paired = paired_summary(rows, METRICS, list(VARIANTS), "arpo-offline")
    print(f"demo:{scenes}, default render budget, judged by the held-out judge")
    header = ["variant", "attribute F1", "judged replay", "renders", "F1 - arpo", "replay - arpo"]
    print("| " + " | ".join(header) + " |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in VARIANTS:
        stats = means[name]
        cells = [format_mean_ci(stats[m], m) for m in METRICS]
        if name == "arpo-offline":
            cells += ["-", "-"]
        else:
            metrics = paired["methods"][name]["metrics"]
            cells += [format_difference(metrics[m], m) for m in METRICS[:2]]
        print(f"| {name} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=150)
    parser.add_argument("--out", type=Path, help="bench folders (default: a temporary one)")
    parser.add_argument(
        "--only", nargs="+", choices=list(VARIANTS), help="bench these variants only (no table)"
    )
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="arpo-ablation-"))
    run(args.scenes, out, args.only)


if __name__ == "__main__":
    main()
