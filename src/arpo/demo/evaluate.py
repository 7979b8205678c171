"""How well a CLIP model knows the demo world, measured on held-out scenes.

* retrieval: a scene's true caption ranked first among 100 captions (its own and 99 of other
  scenes), from the image;
* per attribute, on one-object scenes: the true caption scored above the same caption with
  that one attribute changed.

Held-out scenes come from the ``heldout`` seed namespace, which training never uses.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from arpo.demo.render import draw_scene
from arpo.demo.scenes import (
    ATTRIBUTES,
    Scene,
    canonical_prompt,
    caption,
    change_attribute,
    sample_scene,
)

if TYPE_CHECKING:
    import torch
    from PIL import Image

EncodeImages = Callable[[Sequence["Image.Image"]], "torch.Tensor"]
EncodeTexts = Callable[[Sequence[str]], "torch.Tensor"]


def heldout_scene(index: int, n_objects: int | None = None) -> Scene:
    """Held-out scene ``index`` (seeds disjoint from training's)."""
    return sample_scene(random.Random(f"heldout:{index}:{n_objects}"), n_objects)


def render_scene(scene: Scene, index: int, size: int = 128) -> Image.Image:
    return draw_scene(scene, size, size, random.Random(f"heldout-draw:{index}"))


def retrieval_top1(
    encode_images: EncodeImages, encode_texts: EncodeTexts, scenes: int = 500, pool: int = 100
) -> float:
    """Share of held-out scenes whose true caption ranks first among ``pool`` captions."""
    pool = min(pool, scenes)  # a small evaluation ranks among all its captions
    chosen = [heldout_scene(i) for i in range(scenes)]
    rng = random.Random("retrieval")
    captions = [caption(scene, rng) for scene in chosen]
    images = encode_images([render_scene(scene, i) for i, scene in enumerate(chosen)])
    texts = encode_texts(captions)
    similarity = images @ texts.T
    hits = 0
    for i in range(scenes):
        others = [j for j in rng.sample(range(scenes), pool) if j != i][: pool - 1]
        hits += int(all(similarity[i, i] > similarity[i, j] for j in others))
    return hits / scenes


def attribute_accuracy(
    encode_images: EncodeImages, encode_texts: EncodeTexts, scenes: int = 300
) -> dict[str, float]:
    """Per attribute: share of one-object scenes whose true (canonical) caption outscores the
    caption with that attribute changed."""
    rng = random.Random("attributes")
    chosen = [heldout_scene(i, 1) for i in range(scenes)]
    images = encode_images([render_scene(scene, i) for i, scene in enumerate(chosen)])
    results: dict[str, float] = {}
    for attribute in ATTRIBUTES:
        pairs = []
        for i, scene in enumerate(chosen):
            changed = change_attribute(scene, attribute, rng)
            if changed is not None:
                pairs.append((i, canonical_prompt(scene), canonical_prompt(changed)))
        if not pairs:
            continue
        true = encode_texts([p[1] for p in pairs])
        wrong = encode_texts([p[2] for p in pairs])
        wins = 0
        for k, (i, _, _) in enumerate(pairs):
            wins += int(float(images[i] @ true[k]) > float(images[i] @ wrong[k]))
        results[attribute] = wins / len(pairs)
    return results


def evaluate(
    encode_images: EncodeImages, encode_texts: EncodeTexts, scenes: int = 500
) -> dict[str, Any]:
    return {
        "retrieval_top1_of_100": retrieval_top1(encode_images, encode_texts, scenes),
        "attribute_accuracy_one_object": attribute_accuracy(
            encode_images, encode_texts, max(50, scenes * 3 // 5)
        ),
        "heldout_scenes": scenes,
    }


def evaluate_scorer(scorer: Any, scenes: int = 500) -> dict[str, Any]:
    """Evaluate a :class:`arpo.tools.clip.ClipScorer` (the shipped model's real load path)."""
    return evaluate(scorer.encode_images, scorer.encode_texts, scenes)
