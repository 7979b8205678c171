"""How well the ARPO loop recovers demo-world prompts, against interrogation alone, per scene
complexity: a thin wrapper over ``arpo bench demo:N:K`` (one bench per object count K).

For held-out scenes of 1, 2 and 3 objects it runs ``interrogate-best`` (the loop's starting
prompt) and ``arpo-offline`` and prints, per complexity:
  * attribute F1 (and its recall and precision): the shown attributes of the true scene the
    prompt states, and the share of what it states that is true;
  * replay image similarity: the prompt rendered with seeds the search never used, judged
    by the held-out demo judge CLIP against the reference.

    python benchmarks/demo_recovery.py [--scenes 30] [--objects 1 2 3] [--budget R]
        [--out DIR]

The default budget is a run's default render budget (32), what users get. Benches are kept
in --out (default: a temporary folder), so a rerun with the same --out resumes.
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
    print(f"budget {budget or 'default'}; mean ± 95% CI over {scenes} held-out scenes")
    print("| objects | F1: interrogation -> loop | recall | precision | judged replay image"
          " | s / scene |\n| --- | --- | --- | --- | --- | --- |")  # fmt: skip
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

        keys = ("attribute_f1", "attribute_recall", "attribute_precision", "image_score")
        pairs = " | ".join(f"{cell(start, k)} -> {cell(loop, k)}" for k in keys)
        print(f"| {n} | {pairs} | {(time.perf_counter() - started) / scenes:.1f} |")


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
