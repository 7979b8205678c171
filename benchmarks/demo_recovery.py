"""How well the ARPO loop recovers demo-world prompts, against interrogation alone, per scene
complexity: a thin wrapper over ``arpo bench demo:N:K`` (one bench per object count K).

For held-out scenes of 1, 2 and 3 objects it runs ``interrogate-best`` (the loop's starting
prompt) and ``arpo-offline`` and prints, per complexity:
  * attribute recall: share of the true scene's attributes the prompt states;
  * replay image similarity: CLIP image-image similarity to the reference of the prompt's
    renders with seeds the search never used;
  * best search render: the best image similarity among the loop's own renders.

    python benchmarks/demo_recovery.py [--scenes 30] [--objects 1 2 3] [--budget R]
        [--out DIR]

The default budget is the demo preset's own worst case: its iterations times the candidates
it renders each, plus the first prompt (20 x 192 + 1 = 3841); runs stop earlier on patience.
Benches are kept in --out (default: a temporary folder), so a rerun with the same --out
resumes.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def run(scenes: int, objects: list[int], budget: int | None, out: Path) -> None:
    from arpo.bench import run_bench
    from arpo.bench.summary import format_mean_ci
    from arpo.config import Settings
    from arpo.tools.toolbox import Toolbox

    toolbox = Toolbox(Settings(home=out / "arpo-home", preset="demo"))
    if budget is None:
        defaults = toolbox.option_defaults
        budget = 1 + defaults["iterations"] * defaults["rerank_top_k"]
    print(f"budget {budget} renders; mean ± 95% CI over {scenes} held-out scenes")
    print("| objects | recall: interrogation -> loop | replay image: interrogation -> loop"
          " | best search render | s / scene |\n| --- | --- | --- | --- | --- |")  # fmt: skip
    for n in objects:
        started = time.perf_counter()
        outcome = run_bench(
            f"demo:{scenes}:{n}",
            out_dir=out / f"objects-{n}",
            methods=["interrogate-best", "arpo-offline"],
            budget=budget,
            toolbox=toolbox,
        )
        start, loop = (outcome.summary[m]["metrics"] for m in ("interrogate-best", "arpo-offline"))

        def cell(stats: dict, key: str) -> str:
            return format_mean_ci(stats[key], key)

        print(
            f"| {n} | {cell(start, 'attribute_recall')} -> {cell(loop, 'attribute_recall')}"
            f" | {cell(start, 'image_score')} -> {cell(loop, 'image_score')}"
            f" | {cell(loop, 'search_image_score')}"
            f" | {(time.perf_counter() - started) / scenes:.1f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenes", type=int, default=30, help="held-out scenes per complexity")
    parser.add_argument("--objects", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--budget", type=int, default=None, help="renders per scene")
    parser.add_argument("--out", type=Path, default=None, help="keep the benches here")
    args = parser.parse_args()
    if args.out is not None:
        run(args.scenes, args.objects, args.budget, args.out)
        return
    with tempfile.TemporaryDirectory() as folder:
        run(args.scenes, args.objects, args.budget, Path(folder))


if __name__ == "__main__":
    main()
