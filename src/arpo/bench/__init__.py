"""``arpo bench``: compare ARPO with baseline prompt-recovery methods on a set of images.

One job = every (image, method) pair of a dataset (a folder of images, or ``demo:N`` held-out
demo-world scenes), each scored the same way (:mod:`arpo.bench.metrics`) by one judge
(:mod:`arpo.bench.judge`), written as ``results.csv``, ``summary.json`` (mean and 95% CI per
method, each method paired against ARPO, who judged) and ``report.html``.
Methods are plain functions behind one interface (:mod:`arpo.bench.methods`).

Dependencies: tools <- graph <- api <- bench <- cli (bench runs the loop through ``arpo.api``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from arpo.bench.runner import BenchOutcome, run_bench

__all__ = ["BenchOutcome", "run_bench"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from arpo.bench import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'arpo.bench' has no attribute {name!r}")
