"""Check the CUDA paths on the tiny family pipelines: device placement, the profile's dtype,
batching, NaN renders, peak memory and speed, with and without CPU offload.

For a machine with a GPU (never needed by the tests or CI); on a CPU it runs the same steps
(offload is skipped there) so the script itself is known to work:

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/gpu_check.py [--presets tiny,tiny-sdxl,...]

It builds the tiny presets (random weights, seconds each) in a temporary ARPO_HOME, loads each
through the real loading path (Toolbox -> DiffusersRenderer.from_pretrained), renders one batch
of 4 at the preset's size, and prints one line per (preset, offload): device, dtype, the family
detected, whether the renderer's NaN/all-black check fired, peak GPU memory and images per
second (best of 3).
The numbers are of tiny models: they show the paths work, not what a real model costs.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

PRESETS = ("tiny", "tiny-sdxl", "tiny-sd3", "tiny-flux")
PROMPTS = ["a red fox in the snow", "a lighthouse at dusk", "a bowl of fruit", "a blue car"]


def check(preset: str, home: Path, offload: str) -> dict[str, Any]:
    import torch

    from arpo.config import Settings
    from arpo.errors import RenderError
    from arpo.graph.context import RunOptions
    from arpo.tools.toolbox import Toolbox

    settings = Settings(home=home, preset=preset, offload=offload, render_batch_size=4)
    toolbox = Toolbox(settings)
    backend = toolbox.backend
    options = RunOptions.build(toolbox.option_defaults, images_per_prompt=1)
    params = options.render_params
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    timings, bad = [], "none"
    try:
        backend.render(PROMPTS[:1], [0], params)  # warm-up: kernels, allocator
        for _ in range(3):
            start = time.perf_counter()
            backend.render(PROMPTS, [0, 1, 2, 3], params)
            if cuda:
                torch.cuda.synchronize()
            timings.append(time.perf_counter() - start)
    except RenderError as error:  # the renderer's own NaN / all-black check
        bad = str(error).split(":")[0]
    pipeline = getattr(backend, "pipeline", None)
    return {
        "preset": preset,
        "offload": offload,
        "device": getattr(backend, "device", "?"),
        "dtype": str(getattr(pipeline, "dtype", "?")).removeprefix("torch."),
        "family": toolbox.profile.name,
        "size": f"{params.width}x{params.height}",
        "bad_images": bad,
        "peak_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
        "images_per_s": len(PROMPTS) / min(timings) if timings else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default=",".join(PRESETS))
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    offloads = ["none", "model"] if torch.cuda.is_available() else ["none"]
    where = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu (no CUDA)"
    print(f"torch {torch.__version__} on {where}")
    with tempfile.TemporaryDirectory(prefix="arpo-gpu-check-") as tmp:
        home = Path(tmp)
        for preset in args.presets.split(","):
            for offload in offloads:
                row = check(preset.strip(), home, offload)
                peak = "-" if row["peak_mib"] is None else f"{row['peak_mib']:.0f} MiB"
                print(
                    f"{row['preset']:<10} offload={row['offload']:<6} {row['device']:<5} "
                    f"{row['dtype']:<9} family={row['family']:<12} {row['size']:<8} "
                    f"NaN/black: {row['bad_images']}  peak={peak:<9} "
                    f"{row['images_per_s']:.1f} images/s"
                )


if __name__ == "__main__":
    main()
