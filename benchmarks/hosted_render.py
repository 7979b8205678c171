"""Rendering through an images API: what concurrency buys, and whether quality holds.

Against the fake images server of the tests (``tests/fake_images.py``: the images API over
HTTP on loopback, drawing the demo world), reports

  (a) renders/s and wall time of one ``arpo invert`` at the default budget (32 renders) with
      every request taking ``--latency`` seconds (300 ms by default), sequential
      (ARPO_T2I_CONCURRENCY=1) against concurrency 4, and the ratio;
  (b) the demo-world bench (``arpo bench demo:N``, method arpo-offline) rendered in process
      and through HTTP: mean attribute F1 and judge image score of each, paired.

    OMP_NUM_THREADS=1 python benchmarks/hosted_render.py [--latency 0.3] [--scenes 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fake_images import FakeImages

REFERENCE = "a large red solid circle in the center, on a white background"
PRICE = 0.04


def hosted_settings(home: Path, server: FakeImages, concurrency: int) -> Any:
    from arpo.config import Settings

    return Settings(
        home=home,
        preset="demo",
        t2i_model="openai-images:arpo-demo",
        t2i_base_url=server.base_url,
        t2i_api_key="bench",
        t2i_concurrency=concurrency,
        t2i_price=PRICE,
    )


def one_invert(latency: float, concurrency: int) -> dict[str, float]:
    """Wall time and renders of one default run (fresh data directory: nothing cached)."""
    from arpo import api
    from arpo.demo.render import render_prompt
    from arpo.tools.toolbox import Toolbox

    with tempfile.TemporaryDirectory() as home, FakeImages(latency_s=latency) as server:
        toolbox = Toolbox(hosted_settings(Path(home), server, concurrency))
        toolbox.load_models()
        started = time.perf_counter()
        result = api.reverse_prompt(render_prompt(REFERENCE, 1), toolbox=toolbox)
        wall = time.perf_counter() - started
        return {
            "wall_s": wall,
            "renders": float(result.renders_spent),
            "renders_per_s": result.renders_spent / wall,
            "requests": float(len(server.requests)),
            "peak_in_flight": float(server.peak_in_flight),
            "cost_usd": result.cost_usd or 0.0,
        }


def concurrency_report(latency: float) -> None:
    sequential = one_invert(latency, 1)
    parallel = one_invert(latency, 4)
    print(f"(a) one `arpo invert` at the default budget, {latency * 1000:.0f} ms per image")
    for label, row in (("concurrency 1", sequential), ("concurrency 4", parallel)):
        print(
            f"    {label}: {row['wall_s']:.2f} s wall, {row['renders']:.0f} renders, "
            f"{row['renders_per_s']:.2f} renders/s, peak {row['peak_in_flight']:.0f} in "
            f"flight, ${row['cost_usd']:.2f} at ${PRICE:.2f}/image"
        )
    print(
        "    wall-time ratio sequential / concurrency 4: "
        f"{sequential['wall_s'] / parallel['wall_s']:.2f}x"
    )


def bench_quality(scenes: int) -> None:
    from arpo.bench.runner import run_bench
    from arpo.config import Settings
    from arpo.tools.toolbox import Toolbox

    dataset = f"demo:{scenes}"
    outcomes = {}
    with tempfile.TemporaryDirectory() as root, FakeImages() as server:
        local = Toolbox(Settings(home=Path(root) / "local", preset="demo"))
        hosted = Toolbox(hosted_settings(Path(root) / "hosted", server, 4))
        for label, toolbox in (("in process", local), ("through HTTP", hosted)):
            started = time.perf_counter()
            outcome = run_bench(
                dataset,
                out_dir=Path(root) / label.replace(" ", "-"),
                methods=["arpo-offline"],
                toolbox=toolbox,
            )
            outcomes[label] = (outcome, time.perf_counter() - started)
    print(f"(b) {dataset}, arpo-offline, default budget, judged by the held-out judge CLIP")
    rows = {}
    for label, (outcome, wall) in outcomes.items():
        done = {r["image"]: r for r in outcome.rows if r.get("status") == "done"}
        rows[label] = done
        f1 = statistics.fmean(r["attribute_f1"] for r in done.values())
        image = statistics.fmean(r["image_score"] for r in done.values())
        print(
            f"    {label}: attribute F1 {f1:.3f}, image score {image:.4f}, "
            f"{len(done)} images, {wall:.0f} s"
        )
    shared = sorted(set(rows["in process"]) & set(rows["through HTTP"]))
    for metric in ("attribute_f1", "image_score"):
        diffs = [rows["through HTTP"][k][metric] - rows["in process"][k][metric] for k in shared]
        mean = statistics.fmean(diffs)
        sem = statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else float("nan")
        print(f"    paired HTTP - in process, {metric}: {mean:+.4f} +- {sem:.4f} (standard error)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=0.3, help="seconds per image request")
    parser.add_argument("--scenes", type=int, default=30, help="demo scenes for part (b)")
    parser.add_argument("--skip-bench", action="store_true", help="only part (a)")
    args = parser.parse_args()
    concurrency_report(args.latency)
    if not args.skip_bench:
        bench_quality(args.scenes)


if __name__ == "__main__":
    main()
