"""Train the demo CLIP contrastively on rendered scenes and their captions.

    python -m arpo.demo.train --out src/arpo/demo/clip            # the shipped model
    python -m arpo.demo.train --out /tmp/clip --steps 300 --pool 20000   # a quick one

Reproducible: scenes, captions and initial weights come from fixed seeds (results can still
differ in the last digits across CPUs and thread counts). Scenes are rendered ahead into a
pool (with two processes); every step draws a batch, captions each scene in a freshly sampled
phrasing, and adds two hard negatives per scene in the same phrasing (one attribute changed,
the colour swapped with the background's, an object added or removed, or two objects' colours
or shapes exchanged), which teach shape, fill, position and binding rather than colour alone.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import multiprocessing
import random
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from arpo.demo.clip_model import build_tokenizer, model_config, world_words
from arpo.demo.render import draw_scene
from arpo.demo.scenes import ATTRIBUTES, Scene, caption, change_attribute, sample_scene

log = logging.getLogger("arpo.demo.train")
RENDER_SIZE = 128


def _render_one(index: int) -> tuple[Scene, bytes]:
    from PIL import Image

    from arpo.demo.clip_model import MODEL_CFG

    scene = sample_scene(random.Random(f"train:{index}"))
    image = draw_scene(scene, RENDER_SIZE, RENDER_SIZE, random.Random(f"train-draw:{index}"))
    side = MODEL_CFG["vision_cfg"]["image_size"]
    small = image.resize((side, side), Image.Resampling.BICUBIC)
    return scene, np.asarray(small, dtype=np.uint8).tobytes()


def render_pool(size: int, workers: int = 2) -> tuple[list[Scene], np.ndarray]:
    """``size`` training scenes and their images (uint8, N x H x W x 3) at the model's input
    size, resized the way open_clip's preprocessing resizes (bicubic)."""
    from arpo.demo.clip_model import MODEL_CFG

    side = MODEL_CFG["vision_cfg"]["image_size"]
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        results = pool.map(_render_one, range(size), chunksize=256)
    scenes = [scene for scene, _ in results]
    pixels = np.frombuffer(b"".join(data for _, data in results), dtype=np.uint8)
    return scenes, pixels.reshape(size, side, side, 3)


def hard_negative(scene: Scene, rng: random.Random) -> Scene:
    """A caption-able scene that differs from ``scene`` in one way the loop must not confuse:
    one attribute changed, an object's colour swapped with the background's, an object
    added or removed, or two objects' colours or shapes exchanged (attribute binding)."""
    kinds = ["attribute"] * 4 + ["swap_background", "extra", "remove", "bind"]
    for kind in rng.sample(kinds, len(kinds)):
        changed = _NEGATIVES[kind](scene, rng)
        if changed is not None and changed != scene:
            return changed
    return scene


def _changed_attribute(scene: Scene, rng: random.Random) -> Scene | None:
    for attribute in rng.sample(ATTRIBUTES, len(ATTRIBUTES)):
        changed = change_attribute(scene, attribute, rng)
        if changed is not None:
            return changed
    return None


def _swap_background(scene: Scene, rng: random.Random) -> Scene | None:
    if scene.background.is_gradient:
        return None
    index = rng.randrange(len(scene.objects))
    obj = scene.objects[index]
    objects = list(scene.objects)
    objects[index] = replace(obj, colour=scene.background.colour)
    return replace(
        scene, objects=tuple(objects), background=replace(scene.background, colour=obj.colour)
    )


def _extra_object(scene: Scene, rng: random.Random) -> Scene | None:
    if scene.total_objects >= 3:
        return None
    extra = sample_scene(rng, 1).objects[0]
    taken = {obj.position for obj in scene.objects}
    if extra.position in taken:
        return None
    return replace(scene, objects=(*scene.objects, extra))


def _removed_object(scene: Scene, rng: random.Random) -> Scene | None:
    if len(scene.objects) < 2:
        return None
    drop = rng.randrange(len(scene.objects))
    return replace(scene, objects=tuple(o for i, o in enumerate(scene.objects) if i != drop))


def _bound_wrongly(scene: Scene, rng: random.Random) -> Scene | None:
    if len(scene.objects) < 2:
        return None
    i, j = rng.sample(range(len(scene.objects)), 2)
    field = rng.choice(("colour", "shape", "fill"))
    a, b = scene.objects[i], scene.objects[j]
    objects = list(scene.objects)
    objects[i] = replace(a, **{field: getattr(b, field)})
    objects[j] = replace(b, **{field: getattr(a, field)})
    return replace(scene, objects=tuple(objects))


_NEGATIVES = {
    "attribute": _changed_attribute,
    "swap_background": _swap_background,
    "extra": _extra_object,
    "remove": _removed_object,
    "bind": _bound_wrongly,
}


def batch_texts(
    scenes: list[Scene], rng: random.Random, negatives: int = 2
) -> tuple[list[str], list[str]]:
    """Captions, and ``negatives`` hard-negative captions per scene in the same phrasing
    (same caption seed), negatives ordered [all first negatives, all second, ...]."""
    positives: list[str] = []
    rounds: list[list[str]] = [[] for _ in range(negatives)]
    for scene in scenes:
        phrasing = rng.getrandbits(32)
        positives.append(caption(scene, random.Random(phrasing)))
        for texts in rounds:
            texts.append(caption(hard_negative(scene, rng), random.Random(phrasing)))
    return positives, [text for texts in rounds for text in texts]


def train(
    out: Path,
    *,
    steps: int,
    batch: int,
    pool_size: int,
    lr: float,
    seed: int,
    eval_every: int = 0,
) -> dict[str, Any]:
    import open_clip
    import torch
    from safetensors.torch import save_file

    from arpo.demo.clip_model import PREPROCESS_CFG

    started = time.time()
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(world_words())
    tokenizer.save_pretrained(out)
    (out / "open_clip_config.json").write_text(json.dumps(model_config(len(tokenizer)), indent=2))

    torch.manual_seed(seed)
    logging.disable(logging.WARNING)  # open_clip warns that the new model has no weights yet
    model = open_clip.create_model(f"local-dir:{out}", load_weights=False)
    logging.disable(logging.NOTSET)
    tokenize = open_clip.get_tokenizer(f"local-dir:{out}")

    log.info("rendering %d training scenes...", pool_size)
    scenes, pixels = render_pool(pool_size)
    log.info("rendered in %.0f s", time.time() - started)
    mean = torch.tensor(PREPROCESS_CFG["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(PREPROCESS_CFG["std"]).view(1, 3, 1, 1)

    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "logit_scale" not in n]
    rest = [p for n, p in model.named_parameters() if p.ndim < 2 or "logit_scale" in n]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}], lr=lr
    )
    warmup = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: (
            (s + 1) / warmup
            if s < warmup
            else 0.5 * (1 + math.cos(math.pi * (s - warmup) / max(1, steps - warmup)))
        ),
    )
    rng = random.Random(f"batches:{seed}")
    model.train()
    for step in range(steps):
        index = rng.sample(range(pool_size), batch)
        images = torch.from_numpy(pixels[index]).permute(0, 3, 1, 2).float().div(255)
        images = (images - mean) / std
        positives, negatives = batch_texts([scenes[i] for i in index], rng)
        image_features = torch.nn.functional.normalize(model.encode_image(images), dim=-1)
        text_features = torch.nn.functional.normalize(
            model.encode_text(tokenize(positives + negatives)), dim=-1
        )
        scale = model.logit_scale.exp().clamp(max=100)
        targets = torch.arange(batch)
        image_logits = scale * image_features @ text_features.T  # B x 3B: hard negatives too
        text_logits = scale * text_features[:batch] @ image_features.T
        loss = (
            torch.nn.functional.cross_entropy(image_logits, targets)
            + torch.nn.functional.cross_entropy(text_logits, targets)
        ) / 2
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 50 == 0 or step == steps - 1:
            log.info(
                "step %d/%d loss %.3f (%.0f s)", step + 1, steps, loss.item(), time.time() - started
            )
        if eval_every and (step + 1) % eval_every == 0 and step + 1 < steps:
            log.info("  held-out check: %s", _quick_check(model, tokenize, mean, std))
            model.train()

    model.eval()
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / "open_clip_model.safetensors"))
    report = {
        "steps": steps,
        "batch": batch,
        "pool": pool_size,
        "lr": lr,
        "seed": seed,
        "train_seconds": round(time.time() - started, 1),
        "torch_threads": torch.get_num_threads(),
    }
    log.info("trained in %.0f s; evaluating on held-out scenes...", report["train_seconds"])
    report.update(evaluate_folder(out))
    (out / "training.json").write_text(json.dumps(report, indent=2))
    return report


def _quick_check(model: Any, tokenize: Any, mean: Any, std: Any) -> dict[str, Any]:
    """Small held-out evaluation of the model being trained (progress, not the report)."""
    import torch
    from PIL import Image

    from arpo.demo.clip_model import MODEL_CFG
    from arpo.demo.evaluate import evaluate

    side = MODEL_CFG["vision_cfg"]["image_size"]
    model.eval()

    def images(batch: Any) -> Any:
        arrays = [np.asarray(im.resize((side, side), Image.Resampling.BICUBIC)) for im in batch]
        tensor = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float().div(255)
        with torch.no_grad():
            return torch.nn.functional.normalize(model.encode_image((tensor - mean) / std), dim=-1)

    def texts(batch: Any) -> Any:
        with torch.no_grad():
            return torch.nn.functional.normalize(model.encode_text(tokenize(list(batch))), dim=-1)

    metrics = evaluate(images, texts, scenes=200)
    accuracy = {k: round(v, 2) for k, v in metrics["attribute_accuracy_one_object"].items()}
    return {"top1": metrics["retrieval_top1_of_100"], **accuracy}


def evaluate_folder(folder: Path, scenes: int = 500) -> dict[str, Any]:
    """Held-out metrics of a saved model, loaded through arpo's real scorer path."""
    from arpo.demo.evaluate import evaluate_scorer
    from arpo.tools.clip import ClipScorer

    scorer = ClipScorer.from_pretrained(f"local-dir:{folder}", device="cpu")
    return evaluate_scorer(scorer, scenes)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="folder to write the model to")
    parser.add_argument("--steps", type=int, default=2400)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--pool", type=int, default=120_000, help="training scenes rendered ahead")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=400, help="held-out check every N steps")
    parser.add_argument("--evaluate-only", action="store_true", help="only report held-out metrics")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    log.setLevel(logging.INFO)
    if args.evaluate_only:
        print(json.dumps(evaluate_folder(args.out), indent=2))
        return
    report = train(
        args.out,
        steps=args.steps,
        batch=args.batch,
        pool_size=args.pool,
        lr=args.lr,
        seed=args.seed,
        eval_every=args.eval_every,
    )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
