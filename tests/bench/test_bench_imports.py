"""The bench modules import nothing heavy: ``arpo --help`` and ``import arpo.bench`` stay fast."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("torch", "diffusers", "transformers", "open_clip", "langchain_openai")
MODULES = ("cost", "dataset", "methods", "metrics", "pez", "report", "runner", "summary")


def test_bench_modules_load_no_heavy_library() -> None:
    code = (
        "import json, sys\n"
        + "".join(f"import arpo.bench.{name}\n" for name in MODULES)
        + f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
