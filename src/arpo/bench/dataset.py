"""Bench datasets: a folder of images (a sidecar ``name.txt`` holds an image's true prompt) or
``demo:N`` (N held-out demo-world scenes, whose true prompts and attributes are known)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from arpo.errors import ArpoError, InvalidOptionError

if TYPE_CHECKING:
    from PIL import Image

    from arpo.demo.scenes import Scene

DEMO_FIRST_INDEX = 10_000  # the held-out scene numbers benchmarks/demo_recovery.py used
_DEMO_SPEC = re.compile(r"demo:(\d+)(?::([123]))?")


@dataclass(frozen=True)
class BenchImage:
    """One reference image of a dataset; ``load`` decodes it (it may raise ArpoError)."""

    name: str
    load: Callable[[], Image.Image]
    true_prompt: str | None = None
    scene: Scene | None = None  # demo world only: what the image holds, for attribute recall


@dataclass(frozen=True)
class Dataset:
    spec: str
    images: list[BenchImage]
    problems: list[dict[str, str]] = field(default_factory=list)  # {"image", "error"}


def load_dataset(spec: str, *, max_pixels: int = 40_000_000) -> Dataset:
    """The dataset named by ``spec``: ``demo:N``, ``demo:N:OBJECTS`` or a folder of images.

    Images that cannot be read are left out and listed in ``problems``; a dataset with no
    usable image is an error.
    """
    if spec.startswith("demo:"):
        return demo_dataset(spec)
    return folder_dataset(Path(spec).expanduser(), max_pixels=max_pixels)


def demo_dataset(spec: str) -> Dataset:
    """Held-out scenes ``10000 ..``; without ``:OBJECTS`` the object count cycles 1, 2, 3."""
    from arpo.demo.evaluate import heldout_scene, render_scene
    from arpo.demo.scenes import canonical_prompt

    match = _DEMO_SPEC.fullmatch(spec)
    if not match or int(match.group(1)) < 1:
        raise InvalidOptionError(
            f"dataset '{spec}' is not a demo dataset: write demo:N (N scenes, N >= 1), or "
            "demo:N:K for scenes of K objects (1-3), e.g. demo:20 or demo:20:1."
        )
    count, fixed = int(match.group(1)), match.group(2)
    images = []
    for i in range(count):
        objects = int(fixed) if fixed else i % 3 + 1
        index = DEMO_FIRST_INDEX + i
        scene = heldout_scene(index, objects)
        images.append(
            BenchImage(
                name=f"scene-{index}-{objects}obj",
                load=lambda scene=scene, index=index: render_scene(scene, index),
                true_prompt=canonical_prompt(scene),
                scene=scene,
            )
        )
    return Dataset(spec, images)


def folder_dataset(folder: Path, *, max_pixels: int = 40_000_000) -> Dataset:
    """Every image file directly in ``folder``, by name; unreadable ones go to ``problems``."""
    from arpo.tools.images import IMAGE_SUFFIXES, load_image

    if not folder.is_dir():
        raise InvalidOptionError(
            f"dataset '{folder}' is not a folder; give a folder of images or demo:N."
        )
    files = sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    images, problems = [], []
    for path in files:
        try:
            load_image(path, max_pixels=max_pixels)  # check now: a bad file is reported up front
        except ArpoError as error:
            problems.append({"image": path.name, "error": str(error)})
            continue
        images.append(
            BenchImage(
                name=path.name,
                load=lambda path=path: load_image(path, max_pixels=max_pixels),
                true_prompt=_sidecar_prompt(path),
            )
        )
    if not images:
        found = f"{len(files)} unreadable image file(s)" if files else "no image files"
        raise InvalidOptionError(
            f"dataset folder '{folder}' has {found} "
            f"({', '.join(IMAGE_SUFFIXES)}); add images or use demo:N."
        )
    return Dataset(str(folder), images, problems)


def _sidecar_prompt(image: Path) -> str | None:
    sidecar = image.with_suffix(".txt")
    try:
        text = sidecar.read_text(encoding="utf-8").strip() if sidecar.is_file() else ""
    except (OSError, UnicodeDecodeError):
        return None
    return text or None
