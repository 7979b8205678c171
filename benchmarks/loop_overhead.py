"""Benchmarks for the ARPO loop on the tiny preset (CPU is fine).

Reports
  (a) the share of each iteration's wall time spent outside backend calls (graph, checkpoints,
      artifact I/O, building candidate edits): backend = diffusion renders + CLIP encodes
      (tokenizing included);
  (b) the speedup of scoring 32 candidate prompts in one batch over 32 single calls;
  (c) that a repeated render is served from the cache, and how much faster it is.

    python benchmarks/loop_overhead.py [--iterations 6] [--size 128]
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")


class Stopwatch:
    """Accumulates time spent inside wrapped calls."""

    def __init__(self) -> None:
        self.total = 0.0

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.total += time.perf_counter() - start

        return timed


def make_reference(path: Path, size: int) -> Path:
    import numpy as np
    from PIL import Image

    pixels = np.zeros((size, size, 3), dtype=np.uint8)
    pixels[:] = (40, 80, 200)
    pixels[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = (230, 40, 40)
    Image.fromarray(pixels).save(path)
    return path


def overhead(toolbox: Any, reference: Path, iterations: int, size: int) -> None:
    from arpo import api

    watch, renders = Stopwatch(), Stopwatch()
    backend, scorer = toolbox.backend, toolbox.scorer
    backend.render = watch.wrap(renders.wrap(backend.render))
    scorer.tokenizer = watch.wrap(scorer.tokenizer)  # tokenizing is part of CLIP text encoding
    scorer.model.encode_text = watch.wrap(scorer.model.encode_text)
    scorer.model.encode_image = watch.wrap(scorer.model.encode_image)

    marks: list[tuple[float, float, float]] = []  # (wall clock, backend s, render s) so far

    def on_progress(event: dict[str, Any]) -> None:
        if event.get("event") == "iteration":
            marks.append((time.perf_counter(), watch.total, renders.total))

    api.reverse_prompt(
        reference,
        toolbox=toolbox,
        strategy="offline",
        iterations=iterations,
        candidates=8,
        patience=0,
        width=size,
        height=size,
        on_progress=on_progress,
    )
    print("(a) per iteration: wall ms, backend ms (render ms), outside-backend ms, share outside")
    rows = []
    for (t0, b0, r0), (t1, b1, r1) in itertools.pairwise(marks):
        wall, inside, rendering = t1 - t0, b1 - b0, r1 - r0
        rows.append((wall, inside, rendering))
        print(
            f"    {wall * 1000:8.1f} {inside * 1000:8.1f} ({rendering * 1000:6.1f})"
            f" {(wall - inside) * 1000:8.1f}   {(wall - inside) / wall:6.1%}"
        )
    outside = [w - i for w, i, _ in rows]
    print(
        f"    mean time outside backend calls: {statistics.mean(outside) * 1000:.1f} ms/iteration"
    )
    print(f"    share outside, all iterations: {sum(outside) / sum(w for w, _, _ in rows):.1%}")
    rendered = [(w, i) for w, i, r in rows if r > 0]  # iterations whose prompt was not cached
    if rendered:
        share = sum(w - i for w, i in rendered) / sum(w for w, _ in rendered)
        print(
            f"    share outside, iterations that rendered a new prompt ({len(rendered)}): "
            f"{share:.1%}  (target < 10%)"
        )


def batch_speedup(toolbox: Any, reference: Path) -> None:
    from arpo.tools.images import load_image

    scorer = toolbox.scorer
    image = load_image(reference)
    ref = scorer.encode_images([image], keys=["bench-ref"])[0]
    prompts = [f"a red square on a blue background, variation {i}" for i in range(32)]

    def fresh() -> None:
        scorer._texts.clear()

    fresh()
    start = time.perf_counter()
    for prompt in prompts:
        scorer.text_similarity([prompt], ref)
    single = time.perf_counter() - start
    fresh()
    start = time.perf_counter()
    scorer.text_similarity(prompts, ref)
    batched = time.perf_counter() - start
    start = time.perf_counter()
    scorer.text_similarity(prompts, ref)
    cached = time.perf_counter() - start
    print(
        f"(b) 32 prompts: single calls {single * 1000:.1f} ms, one batch {batched * 1000:.1f} ms "
        f"-> speedup x{single / batched:.1f}; again from the text cache {cached * 1000:.2f} ms"
    )


def render_cache(toolbox: Any, size: int) -> None:
    from arpo.tools.t2i import RenderParams

    cache = toolbox.renderer
    params = RenderParams(width=size, height=size, steps=2, guidance=5.0)
    calls_before = cache.misses
    start = time.perf_counter()
    first = cache.render(["a lighthouse at dusk"], [123], params)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    second = cache.render(["a lighthouse at dusk"], [123], params)
    warm = time.perf_counter() - start
    assert first == second, "a cached render must return the same artifact"
    print(
        f"(c) render: first {cold * 1000:.1f} ms (backend calls: {cache.misses - calls_before}), "
        f"repeat {warm * 1000:.2f} ms from cache (hits: {cache.hits}) -> x{cold / warm:.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--iterations", type=int, default=6)
    parser.add_argument("--size", type=int, default=128)
    args = parser.parse_args()

    from arpo.config import Settings
    from arpo.tools.toolbox import Toolbox

    with tempfile.TemporaryDirectory() as home:
        toolbox = Toolbox(Settings(home=Path(home), preset="tiny"))
        toolbox.load_models()
        reference = make_reference(Path(home) / "reference.png", args.size)
        overhead(toolbox, reference, args.iterations, args.size)
        batch_speedup(toolbox, reference)
        render_cache(toolbox, args.size)


if __name__ == "__main__":
    main()
