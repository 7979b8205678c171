"""Single calls to the models: render a prompt, score prompts against an image, caption one."""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arpo.api.images import read_image
from arpo.api.toolboxes import get_toolbox
from arpo.errors import InvalidOptionError

if TYPE_CHECKING:
    from arpo.tools.toolbox import Toolbox


def generate(
    prompt: str,
    *,
    seed: int = 0,
    count: int = 1,
    out_dir: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    keep_existing: bool = False,
    toolbox: Toolbox | None = None,
    **render_options: Any,
) -> list[Path]:
    """Render ``prompt`` with seeds ``seed .. seed+count-1``; returns the image files (in the
    artifact store, or copies ``out_dir/seed-N.png``; an existing different file there is
    refused unless ``overwrite``, or, with ``keep_existing``, kept: the new image takes the
    next free name, ``seed-N-2.png``, ``seed-N-3.png``...).

    ``render_options``: negative_prompt, steps, guidance, width, height; unset, the model
    family's (its native square, steps and guidance).
    """
    from arpo.graph.context import RunOptions

    if not prompt.strip():
        raise InvalidOptionError("the prompt is empty; give the text to render.")
    toolbox = toolbox or get_toolbox()
    RunOptions.build(toolbox.option_defaults, seed=seed, images_per_prompt=count, **render_options)
    if out_dir is not None and not keep_existing:
        check_targets(seed_files(out_dir, [seed + i for i in range(count)]), overwrite)
    toolbox.backend  # noqa: B018 - load the model: its family decides the defaults
    defaults = toolbox.option_defaults_for(
        None, width=render_options.get("width"), height=render_options.get("height")
    )
    options = RunOptions.build(defaults, seed=seed, images_per_prompt=count, **render_options)
    toolbox.check_render_params(options.render_params)
    targets = seed_files(out_dir, options.seeds) if out_dir is not None else []
    hashes = toolbox.renderer.render([prompt] * count, options.seeds, options.render_params)
    paths = [toolbox.store.path(digest) for digest in hashes]
    if out_dir is None:
        return paths
    if keep_existing and not overwrite:
        return [copy_beside(path, target) for path, target in zip(paths, targets, strict=True)]
    return copy_out(paths, targets, overwrite)


def seed_files(out_dir: str | os.PathLike[str], seeds: Sequence[int]) -> list[Path]:
    """Where renders are copied: ``out_dir/seed-N.png``."""
    return [Path(out_dir).expanduser() / f"seed-{seed}.png" for seed in seeds]


def check_targets(targets: Sequence[Path], overwrite: bool) -> None:
    """Refuse, before any work, to write over existing files (unless ``overwrite``)."""
    if overwrite:
        return
    taken = [path for path in targets if path.exists()]
    if taken:
        names = ", ".join(str(path) for path in taken[:3]) + (", ..." if len(taken) > 3 else "")
        raise InvalidOptionError(
            f"{names} exists already; choose another --out folder or seed, or pass --overwrite."
        )


def copy_beside(source: Path, target: Path) -> Path:
    """Copy ``source`` to ``target``, or, where another file holds that name, to the first free
    ``<stem>-2<suffix>``, ``-3``...; a file with the same bytes is reused, none is replaced."""
    data = source.read_bytes()
    for number in itertools.count(1):
        path = target if number == 1 else target.with_name(f"{target.stem}-{number}{target.suffix}")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with path.open("xb") as file:  # exclusive: never over a file made meanwhile
                file.write(data)
            return path
        except FileExistsError:
            if path.read_bytes() == data:
                return path
    raise AssertionError("unreachable")


def copy_out(paths: Sequence[Path], targets: Sequence[Path], overwrite: bool) -> list[Path]:
    """Copy store files to ``targets``; a file that appeared meanwhile is never replaced
    silently (the same bytes are fine)."""
    for source, target in zip(paths, targets, strict=True):
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() and not overwrite and target.read_bytes() != source.read_bytes():
            raise InvalidOptionError(
                f"{target} appeared while rendering; pass --overwrite to replace it."
            )
        shutil.copyfile(source, target)
    return list(targets)


def score(
    image: Any, prompts: list[str], *, toolbox: Toolbox | None = None
) -> list[tuple[str, float]]:
    """CLIP similarity of each prompt to ``image``, best first (one batch)."""
    prompts = [p for p in prompts if p.strip()]
    if not prompts:
        raise InvalidOptionError("give at least one non-empty prompt to score.")
    toolbox = toolbox or get_toolbox()
    picture = read_image(image, toolbox)
    digest = toolbox.store.put_image(picture)
    reference = toolbox.scorer.encode_images([picture], keys=[digest])[0]
    scores = toolbox.scorer.text_similarity(prompts, reference)
    return sorted(zip(prompts, scores, strict=True), key=lambda pair: pair[1], reverse=True)


def unknown_words(prompts: list[str], *, toolbox: Toolbox | None = None) -> dict[str, list[str]]:
    """For each prompt with words the scoring CLIP cannot read (its tokenizer maps them to an
    unknown token, so "a cat" and "a lighthouse" score alike), those words; prompts it reads
    whole are left out. Always empty for CLIP's byte-level BPE, which reads any text."""
    toolbox = toolbox or get_toolbox()
    found = {prompt: toolbox.scorer.unknown_words(prompt) for prompt in prompts}
    return {prompt: words for prompt, words in found.items() if words}


def caption(image: Any, *, toolbox: Toolbox | None = None, use_llm: bool = True) -> str:
    """A starting prompt for ``image`` without running the loop: the vision LLM's caption when
    ``use_llm`` and an LLM is configured, else the local captioner's (ARPO_CAPTION_MODEL)
    completed with vocabulary phrases, else CLIP interrogation over the phrase vocabulary
    (the same caption a run starts from)."""
    from arpo.graph.nodes import caption_reference

    toolbox = toolbox or get_toolbox()
    picture = read_image(image, toolbox)
    digest = toolbox.store.put_image(picture)
    embedding = toolbox.scorer.encode_images([picture], keys=[digest])[0]
    return caption_reference(toolbox, digest, embedding, use_llm)
