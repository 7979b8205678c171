"""How well the ARPO loop recovers demo-world prompts, against interrogation alone.

For held-out scenes (seeds training never saw) of 1, 2 and 3 objects, runs the offline loop
and reports, for the initial interrogation (iteration 0) and the final prompt:
  * attribute recall: share of the true scene's attributes the prompt states;
  * image-image CLIP similarity between the prompt's render and the reference.

    python benchmarks/demo_recovery.py [--scenes 30] [--objects 1 2 3] [--rerank 0]

(default options: the demo preset's; --rerank 0 selects by text similarity alone)
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


def mean_ci(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.3f}" if values else "-"
    half = 1.96 * statistics.stdev(values) / len(values) ** 0.5
    return f"{statistics.mean(values):.3f} ± {half:.3f}"


def run(scenes: int, objects: list[int], options: dict[str, Any]) -> None:
    from arpo import api
    from arpo.config import Settings
    from arpo.demo.evaluate import heldout_scene
    from arpo.demo.scenes import attribute_recall
    from arpo.tools.toolbox import Toolbox

    with tempfile.TemporaryDirectory() as home:
        toolbox = Toolbox(Settings(home=Path(home), preset="demo"))
        print(f"options: {options}")
        print(
            "objects  scenes  recall: interrogation -> final"
            "      image sim: interrogation -> final    s/scene"
        )
        for n in objects:
            rows: dict[str, list[float]] = {"r0": [], "r1": [], "s0": [], "s1": []}
            started = time.perf_counter()
            for index in range(scenes):
                outcome = api.demo(scene=10_000 + index, objects=n, toolbox=toolbox, **options)
                result = outcome.result
                scene = heldout_scene(10_000 + index, n)
                rows["r0"].append(attribute_recall(scene, result.initial_prompt))
                rows["r1"].append(outcome.recall)
                rows["s0"].append(result.history[0]["image_score"])
                rows["s1"].append(result.best_image_score)
            per_scene = (time.perf_counter() - started) / scenes
            print(
                f"{n:>7}  {scenes:>6}  {mean_ci(rows['r0'])} -> {mean_ci(rows['r1'])}"
                f"    {mean_ci(rows['s0'])} -> {mean_ci(rows['s1'])}    {per_scene:.1f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenes", type=int, default=30, help="held-out scenes per complexity")
    parser.add_argument("--objects", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--iterations", type=int, default=None)
    parser.add_argument("--candidates", type=int, default=None)
    parser.add_argument(
        "--rerank", type=int, default=None, help="rerank_top_k (0: text objective only)"
    )
    args = parser.parse_args()
    options = {
        "iterations": args.iterations,
        "candidates": args.candidates,
        "rerank_top_k": args.rerank,
    }
    run(args.scenes, args.objects, {k: v for k, v in options.items() if v is not None})


if __name__ == "__main__":
    main()
