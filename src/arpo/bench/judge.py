"""The bench's judge: the CLIP model that scores every similarity column of the bench.

A search that maximises a CLIP score and is then judged by the same CLIP grades its own
homework: ARPO's rerank and random search maximise the image-image score, PEZ the text-image
score. ``arpo bench --judge MODEL`` names another open_clip model (``ViT-B-32/laion2b_s34b_b79k``,
``local-dir:/path``, ``hf-hub:org/repo``): it scores the replay, best-search-render, text-image
and text-text columns, while the search keeps the Toolbox's scorer. ``--judge same`` judges
with the search's own scorer, explicitly, and every output says it is not held out. Naming
the search's own model any other way is refused, so a held-out label is never wrong.

Without ``--judge``, the preset's held-out judge judges (the demo preset ships one: another
small CLIP, trained on other scenes from another seed with another architecture). Models
without one (real checkpoints, the tiny test presets) must name a judge: the bench never
falls back to the search's own CLIP silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from arpo.errors import InvalidOptionError

if TYPE_CHECKING:
    from arpo.tools.clip import ClipScorer
    from arpo.tools.toolbox import Toolbox

SAME = "same"


@dataclass(frozen=True)
class Judge:
    """The scorer that judges, its name and whether the search never used it."""

    scorer: ClipScorer
    name: str
    held_out: bool

    @property
    def label(self) -> str:
        if self.held_out:
            return f"judge: {self.name} (held out)"
        return f"judge: the search's own CLIP (not held out): {self.name}"

    def describe(self) -> dict[str, Any]:
        return {"model": self.name, "held_out": self.held_out, "label": self.label}


def judge_ref(ref: str) -> tuple[str, str | None]:
    """``(model, pretrained)`` of a ``--judge`` reference: ``ARCH/TAG`` splits at the first
    slash; ``local-dir:``, ``hf-hub:`` and a bare architecture have no tag."""
    text = ref.strip()
    if text.startswith(("local-dir:", "hf-hub:")) or "/" not in text:
        return text, None
    model, pretrained = text.split("/", 1)
    return model, pretrained or None


def default_judge(toolbox: Toolbox) -> str:
    """The judge when none is named: the preset's held-out one, else an error that says how
    to name one."""
    preset = toolbox.preset
    if preset is not None and preset.judge_model:
        return preset.judge_model
    raise InvalidOptionError(
        "these models have no held-out judge: name an open_clip model the search does not "
        "use with --judge (e.g. --judge ViT-L-14/openai, or local-dir:/path/to/clip), or say "
        "--judge same to judge with the search's own CLIP (the report then says it is not "
        "held out)."
    )


def check_judge(toolbox: Toolbox, ref: str) -> None:
    """Refuse a judge that names the search's own scorer (only ``same`` may), without
    loading anything."""
    from arpo.tools.toolbox import _clip_name, _same_model

    if not ref.strip():
        raise InvalidOptionError("--judge is empty; give an open_clip model, or 'same'.")
    if ref.strip() == SAME:
        return
    name = _clip_name(*judge_ref(ref))
    search = {_clip_name(*toolbox.clip_choice()), toolbox.describe_models()["clip"] or ""}
    if any(_same_model(name, own) for own in search if own):
        raise InvalidOptionError(
            f"--judge {ref} is the search's own CLIP: a judge the search optimises is not held "
            "out. Name another open_clip model, or say --judge same to judge with the search's "
            "scorer on purpose (the report then says it is not held out)."
        )


def load_judge(toolbox: Toolbox, ref: str) -> Judge:
    """The judge ``ref`` names (checked by :func:`check_judge`), loaded like the Toolbox's
    scorer (its device and CLIP dtype settings)."""
    check_judge(toolbox, ref)
    if ref.strip() == SAME:
        scorer = toolbox.scorer
        return Judge(scorer, toolbox.model_identity()["clip"] or scorer.name, held_out=False)
    from arpo.tools.clip import ClipScorer
    from arpo.tools.toolbox import short_model_name

    settings = toolbox.settings
    model, pretrained = judge_ref(ref)
    with toolbox.loading(f"the judge's CLIP {short_model_name(model, kind='clip', preset=False)}"):
        scorer = ClipScorer.from_pretrained(
            model, pretrained, device=settings.device, dtype=settings.clip_dtype
        )
    return Judge(scorer, scorer.name, held_out=True)


def judge_label(document: dict[str, Any]) -> str:
    """The judge line of a summary document (benches from before the judge: the search's
    own CLIP)."""
    judge = document.get("judge")
    if isinstance(judge, dict) and judge.get("label"):
        return str(judge["label"])
    return "judge: the search's own CLIP (not held out)"
