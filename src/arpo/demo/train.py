"""Train a demo CLIP contrastively on rendered scenes and their captions.

    python -m arpo.demo.train --arch scorer --out src/arpo/demo/clip    # the search's CLIP
    python -m arpo.demo.train --arch judge --out src/arpo/demo/judge    # the held-out judge
    python -m arpo.demo.train --arch scorer --out /tmp/clip --steps 300 --pool 20000  # quick

An architecture (``arpo/demo/architectures/*.json``) names the towers, the preprocessing and
the training recipe: which scene seeds it trains on (the judge's are disjoint from the
scorer's, and both from the ``heldout`` scenes every evaluation uses), its seed, and its hard
negatives. Every step draws a batch from a pool of scenes rendered ahead, captions each scene
in a freshly sampled phrasing and adds hard negatives in the same phrasing: ``shape`` or
``fill`` (that attribute changed, the attributes a small CLIP learns last), or ``any`` (one
attribute changed, the colour swapped with the background's, an object added or removed, or
two objects' colours or shapes exchanged), which teach shape, fill, position and binding
rather than colour alone.

Training checkpoints every ``--checkpoint-every`` steps into ``--work`` and resumes from there
when started again with the same arguments (the rendered pool is kept there too), so an
interrupted run continues where it stopped. Reproducible: scenes, captions and initial weights
come from fixed seeds (results can still differ in the last digits across CPUs and thread
counts).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import logging
import math
import multiprocessing
import os
import random
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from arpo.demo.clip_model import architecture, build_tokenizer, model_config, world_words
from arpo.demo.render import draw_scene
from arpo.demo.scenes import ATTRIBUTES, Scene, caption, change_attribute, sample_scene

log = logging.getLogger("arpo.demo.train")
RENDER_SIZE = 128


def _render_one(index: int, namespace: str, side: int) -> tuple[Scene, bytes]:
    from PIL import Image

    scene = sample_scene(random.Random(f"{namespace}:{index}"))
    image = draw_scene(scene, RENDER_SIZE, RENDER_SIZE, random.Random(f"{namespace}-draw:{index}"))
    small = image.resize((side, side), Image.Resampling.BICUBIC)
    return scene, np.asarray(small, dtype=np.uint8).tobytes()


def render_pool(
    size: int, namespace: str, side: int, workers: int = 2
) -> tuple[list[Scene], np.ndarray]:
    """``size`` training scenes from seed ``namespace`` and their images (uint8, N x side x
    side x 3), resized the way open_clip's preprocessing resizes (bicubic)."""
    render = functools.partial(_render_one, namespace=namespace, side=side)
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        results = pool.map(render, range(size), chunksize=256)
    scenes = [scene for scene, _ in results]
    pixels = np.frombuffer(b"".join(data for _, data in results), dtype=np.uint8)
    return scenes, pixels.reshape(size, side, side, 3)


def _cached_pool(
    work: Path, size: int, namespace: str, side: int
) -> tuple[list[Scene], np.ndarray]:
    """The pool, rendered once per (scenes, size, side) and kept in ``work``: scenes are cheap
    to sample again from their seeds, pixels are not."""
    path = work / f"pool-{namespace}-{size}-{side}.npy"
    if path.is_file():
        try:
            pixels = np.load(path, mmap_mode="r")
            if pixels.shape == (size, side, side, 3):
                scenes = [sample_scene(random.Random(f"{namespace}:{i}")) for i in range(size)]
                return scenes, np.ascontiguousarray(pixels)
        except (OSError, ValueError):
            pass
        log.warning("rendered pool %s is unreadable; rendering it again", path)
    scenes, pixels = render_pool(size, namespace, side)
    partial = path.with_suffix(".partial.npy")
    np.save(partial, pixels)
    os.replace(partial, path)
    return scenes, pixels


def hard_negative(scene: Scene, rng: random.Random, kind: str = "any") -> Scene:
    """A caption-able scene that differs from ``scene`` in one way the loop must not confuse.

    ``kind`` is an attribute (that attribute changed) or ``any``: one attribute changed, an
    object's colour swapped with the background's, an object added or removed, or two
    objects' colours or shapes exchanged (attribute binding)."""
    if kind in ATTRIBUTES:
        changed = change_attribute(scene, kind, rng)
        if changed is not None and changed != scene:
            return changed
    kinds = ["attribute"] * 4 + ["swap_background", "extra", "remove", "bind"]
    for name in rng.sample(kinds, len(kinds)):
        changed = _NEGATIVES[name](scene, rng)
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
    scenes: list[Scene], rng: random.Random, negatives: tuple[str, ...] = ("any", "any")
) -> tuple[list[str], list[str]]:
    """Captions, and one hard-negative caption per scene for each kind in ``negatives``, in
    the same phrasing (same caption seed), ordered [all first negatives, all second, ...]."""
    positives: list[str] = []
    rounds: list[list[str]] = [[] for _ in negatives]
    for scene in scenes:
        phrasing = rng.getrandbits(32)
        positives.append(caption(scene, random.Random(phrasing)))
        for kind, texts in zip(negatives, rounds, strict=True):
            texts.append(caption(hard_negative(scene, rng, kind), random.Random(phrasing)))
    return positives, [text for texts in rounds for text in texts]


class Checkpoint:
    """Training state in ``work/checkpoint.pt``, written atomically; a checkpoint made with
    other arguments is refused rather than silently mixed in."""

    def __init__(self, work: Path, recipe: dict[str, Any]) -> None:
        self.path = work / "checkpoint.pt"
        self.recipe = recipe

    def load(self) -> dict[str, Any] | None:
        import torch

        if not self.path.is_file():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=False)
        except Exception as exc:  # a torn or foreign file: start again rather than trust it
            log.warning("checkpoint %s is unreadable (%s); starting from step 0", self.path, exc)
            return None
        if state.get("recipe") != self.recipe:
            raise SystemExit(
                f"{self.path} was made with other training arguments; pass --work with a new "
                "folder, or delete it to start again"
            )
        return state

    def save(self, state: dict[str, Any]) -> None:
        import torch

        partial = self.path.with_suffix(".partial")
        torch.save({**state, "recipe": self.recipe}, partial)
        os.replace(partial, self.path)

    def save_training(
        self,
        model: Any,
        optimizer: Any,
        schedule: Any,
        rng: random.Random,
        step: int,
        seconds: float,
    ) -> None:
        """Everything a resumed run needs to continue exactly: weights, optimiser, schedule,
        the batch RNG and torch's (dropout draws from it)."""
        import torch

        self.save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(),
                "rng": rng.getstate(),
                "torch_rng": torch.get_rng_state(),
                "step": step,
                "seconds": seconds,
            }
        )

    def resume_training(
        self, model: Any, optimizer: Any, schedule: Any, rng: random.Random
    ) -> tuple[int, float]:
        """Restore what :meth:`save_training` stored, if there is a checkpoint: the step to
        continue from and the seconds trained before (0, 0.0 when starting afresh)."""
        import torch

        state = self.load()
        if state is None:
            return 0, 0.0
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        rng.setstate(state["rng"])
        if "torch_rng" in state:  # checkpoints from before it was kept
            torch.set_rng_state(state["torch_rng"])
        log.info("resuming at step %d (%.0f s trained before)", state["step"], state["seconds"])
        return state["step"], state["seconds"]


def _schedule(steps: int) -> Any:
    warmup = max(1, steps // 20)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    return factor


def train(
    out: Path,
    *,
    arch: str = "scorer",
    steps: int,
    batch: int,
    pool_size: int,
    lr: float,
    seed: int | None = None,
    work: Path | None = None,
    eval_every: int = 0,
    checkpoint_every: int = 100,
    evaluate_scenes: int = 500,
) -> dict[str, Any]:
    import open_clip
    import torch
    from safetensors.torch import save_file

    started = time.time()
    spec = architecture(arch)
    recipe_cfg = spec["training"]
    seed = recipe_cfg["seed"] if seed is None else seed
    namespace = recipe_cfg["scenes"]
    negatives = tuple(recipe_cfg["negatives"])
    side = spec["model_cfg"]["vision_cfg"]["image_size"]
    recipe = {
        "arch": {k: spec[k] for k in ("model_cfg", "preprocess_cfg", "training")},
        "steps": steps,
        "batch": batch,
        "pool": pool_size,
        "lr": lr,
        "seed": seed,
    }
    work = (
        work
        or Path(".arpo-train")
        / hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]
    )
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(world_words())
    tokenizer.save_pretrained(out)
    config = model_config(spec, len(tokenizer))
    (out / "open_clip_config.json").write_text(json.dumps(config, indent=2))

    torch.manual_seed(seed)
    logging.disable(logging.WARNING)  # open_clip warns that the new model has no weights yet
    model = open_clip.create_model(f"local-dir:{out}", load_weights=False)
    logging.disable(logging.NOTSET)
    tokenize = open_clip.get_tokenizer(f"local-dir:{out}")
    log.info("%s: %.2f M parameters", arch, sum(p.numel() for p in model.parameters()) / 1e6)

    log.info("rendering (or loading) %d training scenes from %r...", pool_size, namespace)
    scenes, pixels = _cached_pool(work, pool_size, namespace, side)
    log.info("pool ready in %.0f s", time.time() - started)
    mean = torch.tensor(spec["preprocess_cfg"]["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(spec["preprocess_cfg"]["std"]).view(1, 3, 1, 1)

    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "logit_scale" not in n]
    rest = [p for n, p in model.named_parameters() if p.ndim < 2 or "logit_scale" in n]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}], lr=lr
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(steps))
    rng = random.Random(f"batches:{seed}")
    checkpoint = Checkpoint(work, recipe)
    first, spent = checkpoint.resume_training(model, optimizer, schedule, rng)
    resumed_at = time.time()

    def elapsed() -> float:
        return spent + time.time() - resumed_at

    model.train()
    for step in range(first, steps):
        index = rng.sample(range(pool_size), batch)
        images = torch.from_numpy(pixels[index]).permute(0, 3, 1, 2).float().div(255)
        images = (images - mean) / std
        positives, negative_texts = batch_texts([scenes[i] for i in index], rng, negatives)
        image_features = torch.nn.functional.normalize(model.encode_image(images), dim=-1)
        text_features = torch.nn.functional.normalize(
            model.encode_text(tokenize(positives + negative_texts)), dim=-1
        )
        scale = model.logit_scale.exp().clamp(max=100)
        targets = torch.arange(batch)
        image_logits = scale * image_features @ text_features.T  # B x (1+k)B: hard negatives too
        text_logits = scale * text_features[:batch] @ image_features.T
        loss = (
            torch.nn.functional.cross_entropy(image_logits, targets)
            + torch.nn.functional.cross_entropy(text_logits, targets)
        ) / 2
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        done = step + 1
        if step % 50 == 0 or done == steps:
            log.info("step %d/%d loss %.3f (%.0f s)", done, steps, loss.item(), elapsed())
        if done % checkpoint_every == 0 and done < steps:
            checkpoint.save_training(model, optimizer, schedule, rng, done, elapsed())
        if eval_every and done % eval_every == 0 and done < steps:
            log.info("  held-out check: %s", _quick_check(model, tokenize, mean, std, side))
            model.train()

    model.eval()
    weights = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(weights, str(out / "open_clip_model.safetensors"))
    report = {
        "arch": arch if arch in ("scorer", "judge") else spec,
        "scenes": namespace,
        "negatives": list(negatives),
        "parameters": sum(p.numel() for p in model.parameters()),
        "steps": steps,
        "batch": batch,
        "pool": pool_size,
        "lr": lr,
        "seed": seed,
    }
    return finish_training(out, report, elapsed(), lambda: evaluate_folder(out, evaluate_scenes))


def finish_training(
    out: Path, report: dict[str, Any], seconds: float, evaluate: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """A trainer's report (``report`` plus the time and threads, then the held-out
    evaluation) written to ``out/training.json`` beside the saved model, and returned."""
    import torch

    report = {**report, "train_seconds": round(seconds, 1)}
    report["torch_threads"] = torch.get_num_threads()
    log.info("trained in %.0f s; evaluating on held-out scenes...", report["train_seconds"])
    report.update(evaluate())
    (out / "training.json").write_text(json.dumps(report, indent=2))
    return report


def _quick_check(model: Any, tokenize: Any, mean: Any, std: Any, side: int) -> dict[str, Any]:
    """Small held-out evaluation of the model being trained (progress, not the report)."""
    import torch
    from PIL import Image

    from arpo.demo.evaluate import evaluate

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


def training_parser(
    doc: str | None,
    *,
    arch: str,
    arch_help: str,
    steps: int,
    batch: int,
    pool: int,
    eval_every: int,
    stops_early: bool = False,
) -> argparse.ArgumentParser:
    """The command line both demo trainers share (the CLIPs' and the captioner's); with
    ``stops_early``, ``--until`` too (a trainer whose ``train`` takes ``until``)."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="folder to write the model to")
    parser.add_argument("--arch", default=arch, help=arch_help)
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--batch", type=int, default=batch)
    parser.add_argument("--pool", type=int, default=pool, help="training scenes rendered ahead")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, help="weights and batches seed (default: the arch's)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument(
        "--work", type=Path, help="checkpoint and pool folder (default: .arpo-train/<recipe hash>)"
    )
    parser.add_argument("--checkpoint-every", type=int, default=100)
    parser.add_argument(
        "--eval-every", type=int, default=eval_every, help="held-out check every N steps"
    )
    parser.add_argument("--evaluate-only", action="store_true", help="only report held-out metrics")
    if stops_early:
        parser.add_argument(
            "--until",
            type=int,
            help="stop after this many steps of the --steps schedule and save the model there "
            "(the schedule, and so every step before, is the full run's)",
        )
    return parser


def run_training(
    args: argparse.Namespace,
    train_model: Any,
    evaluate: Any,
    logger: logging.Logger,
) -> None:
    """Parsed :func:`training_parser` arguments to a report on stdout: train with
    ``train_model`` (or only ``evaluate`` the folder with ``--evaluate-only``)."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    logger.setLevel(logging.INFO)
    log.setLevel(logging.INFO)
    if args.evaluate_only:
        print(json.dumps(evaluate(args.out), indent=2))
        return
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    report = train_model(
        args.out,
        arch=args.arch,
        steps=args.steps,
        batch=args.batch,
        pool_size=args.pool,
        lr=args.lr,
        seed=args.seed,
        work=args.work,
        eval_every=args.eval_every,
        checkpoint_every=args.checkpoint_every,
        **({"until": args.until} if getattr(args, "until", None) else {}),
    )
    print(json.dumps(report, indent=2))


def main() -> None:
    parser = training_parser(
        __doc__,
        arch="scorer",
        arch_help="scorer, judge, or the path of an architecture JSON",
        steps=2400,
        batch=256,
        pool=120_000,
        eval_every=400,
    )
    run_training(parser.parse_args(), train, evaluate_folder, log)


if __name__ == "__main__":
    main()
