"""Synthetic stand-ins for the models, so the ARPO loop can be tested in milliseconds.

* :class:`Painter` is a text-to-image backend that paints each (prompt, seed) as a flat colour
  derived from a hash, and remembers which prompt each colour came from.
* :class:`WordScorer` duck-types :class:`arpo.tools.clip.ClipScorer`: a text's embedding is its
  normalised bag of words over a small vocabulary; an image the painter painted is embedded
  as the bag of its prompt's *visible* words; any other image is the reference, embedded as the
  weighted target words. So a prompt scores higher the more target words it holds.
* :data:`VOCABULARY` holds the target phrases, so the offline proposer can find them.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from arpo.config import Settings
from arpo.graph import build_graph, open_checkpointer
from arpo.tools.t2i import RenderParams
from arpo.tools.toolbox import Toolbox
from arpo.tools.vocabulary import Vocabulary

VOCABULARY = Vocabulary.from_mapping(
    {
        "subject": ["red square", "green circle", "yellow triangle", "cat", "house"],
        "colour": ["blue background", "white background", "black background"],
        "style": ["flat graphic", "oil painting", "watercolour", "photograph"],
        "lighting": ["soft light", "harsh light"],
        "detail": ["glossy", "grainy"],
    }
)
TARGET = "red square, blue background, flat graphic"
POOR_START = "a house, white background"  # one target word: a poor but non-zero start


def words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.casefold())


class Painter:
    """A deterministic renderer: flat colour images, one per (prompt, seed)."""

    name = "painter"

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.calls: list[list[str]] = []  # prompts of each backend call
        self.prompts_by_colour: dict[tuple[int, int, int], str] = {}

    @property
    def rendered(self) -> list[str]:
        return [prompt for call in self.calls for prompt in call]

    def render(
        self, prompts: Sequence[str], seeds: Sequence[int], params: RenderParams
    ) -> list[Image.Image]:
        self.calls.append(list(prompts))
        if self.delay_s:
            time.sleep(self.delay_s)
        images = []
        for prompt, seed in zip(prompts, seeds, strict=True):
            digest = hashlib.sha256(f"{prompt}|{seed}".encode()).digest()
            colour = (digest[0], digest[1], digest[2])
            self.prompts_by_colour[colour] = prompt
            images.append(Image.new("RGB", (params.width, params.height), colour))
        return images

    def prompt_of(self, image: Image.Image) -> str | None:
        return self.prompts_by_colour.get(image.convert("RGB").getpixel((0, 0)))


class Crash(BaseException):
    """A simulated hard stop (like KeyboardInterrupt): not an Exception."""


class CrashingPainter(Painter):
    """A painter whose ``crash_on``-th backend call raises ``error`` instead of painting."""

    def __init__(self, crash_on: int, error: BaseException) -> None:
        super().__init__()
        self.crash_on = crash_on
        self.error = error

    def render(
        self, prompts: Sequence[str], seeds: Sequence[int], params: RenderParams
    ) -> list[Image.Image]:
        if len(self.calls) + 1 == self.crash_on:
            self.calls.append(list(prompts))
            raise self.error
        return super().render(prompts, seeds, params)


class WordScorer:
    """A bag-of-words "CLIP": rewards prompts holding the target words (see module doc)."""

    name = "word-scorer"

    def __init__(
        self,
        painter: Painter,
        target: str | Mapping[str, float] = TARGET,
        *,
        vocabulary: Vocabulary = VOCABULARY,
        invisible: Iterable[str] = (),
    ) -> None:
        weights = target if isinstance(target, Mapping) else dict.fromkeys(words(target), 1.0)
        known = [w for phrase in vocabulary.phrases for w in words(phrase)] + list(weights)
        self.index = {w: i + 1 for i, w in enumerate(dict.fromkeys(known))}  # 0: other words
        self.painter = painter
        self.invisible = set(invisible)
        self.reference = np.zeros(len(self.index) + 1)
        for word, weight in weights.items():
            self.reference[self.index[word]] = weight
        self.reference /= np.linalg.norm(self.reference)

    def embed(self, ws: Iterable[str]) -> np.ndarray:
        vector = np.zeros(len(self.index) + 1)
        for word in ws:
            vector[self.index.get(word, 0)] += 1.0
        norm = np.linalg.norm(vector)
        return vector / norm if norm else vector

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self.embed(words(t)) for t in texts])

    def encode_images(
        self, images: Sequence[Image.Image], keys: Sequence[str] | None = None
    ) -> np.ndarray:
        rows = []
        for image in images:
            prompt = self.painter.prompt_of(image)
            if prompt is None:
                rows.append(self.reference)
            else:
                rows.append(self.embed(w for w in words(prompt) if w not in self.invisible))
        return np.stack(rows)

    def encode_stored(self, keys: Sequence[str], load: Callable[[str], Image.Image]) -> np.ndarray:
        return self.encode_images([load(key) for key in keys], keys=keys)

    def text_similarity(self, texts: Sequence[str], reference: np.ndarray) -> list[float]:
        return [float(x) for x in self.encode_texts(texts) @ reference] if texts else []

    def image_similarity(self, embeddings: np.ndarray, reference: np.ndarray) -> list[float]:
        return [float(x) for x in embeddings @ reference]

    def text_score(self, prompt: str) -> float:
        return float(self.embed(words(prompt)) @ self.reference)

    def image_score(self, prompt: str) -> float:
        """The image similarity a render of ``prompt`` gets."""
        visible = [w for w in words(prompt) if w not in self.invisible]
        return float(self.embed(visible) @ self.reference)


def reference_image() -> Image.Image:
    """The reference: a colour the painter never paints, so the scorer sees the target."""
    image = Image.new("RGB", (64, 64), (1, 2, 3))
    image.paste((250, 250, 250), (16, 16, 48, 48))
    return image


def synthetic_toolbox(
    home: Path,
    painter: Painter | None = None,
    scorer: WordScorer | None = None,
    vocabulary: Vocabulary = VOCABULARY,
) -> Toolbox:
    """A Toolbox over the synthetic models, with its data directory at ``home``."""
    painter = painter or Painter()
    scorer = scorer or WordScorer(painter, vocabulary=vocabulary)
    settings = Settings(home=home)
    return Toolbox(settings, renderer=painter, scorer=scorer, vocabulary=vocabulary)  # type: ignore[arg-type]


def captioned_toolbox(
    home: Path, captioner: Any, target: str | Mapping[str, float] = TARGET
) -> tuple[Toolbox, WordScorer]:
    """A synthetic Toolbox with ``captioner`` (a stand-in) as its local captioner, and its
    scorer, which rewards ``target``."""
    painter = Painter()
    scorer = WordScorer(painter, target)
    tools = Toolbox(
        Settings(home=home),
        renderer=painter,
        scorer=scorer,  # type: ignore[arg-type]
        vocabulary=VOCABULARY,
        captioner=captioner,
    )
    return tools, scorer


def checkpoint_snapshots(toolbox: Toolbox, run_id: str) -> list[dict[str, Any]]:
    """Every checkpointed state of a run, newest first, as plain values."""
    saver = open_checkpointer(str(toolbox.settings.checkpoint_db))
    try:
        graph = build_graph(toolbox, saver)
        config = {"configurable": {"thread_id": run_id}}
        return [snapshot.values for snapshot in graph.get_state_history(config)]
    finally:
        saver.conn.close()


def run_record(toolbox: Toolbox, run_id: str) -> dict[str, Any]:
    return json.loads((toolbox.settings.runs_dir / run_id / "run.json").read_text())


class Events:
    """An ``on_progress`` callback that keeps every event."""

    def __init__(self) -> None:
        self.all: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any]) -> None:
        self.all.append(event)

    @property
    def run_id(self) -> str:
        assert self.all and self.all[0]["event"] == "started", self.all[:1]
        return self.all[0]["run_id"]

    @property
    def iterations(self) -> list[dict[str, Any]]:
        return [e for e in self.all if e.get("event") == "iteration"]
