"""Train the demo world's captioner: renders in, true prompts out.

    python -m arpo.demo.train_captioner --out src/arpo/demo/captioner --until 4500  # shipped
    python -m arpo.demo.train_captioner --out /tmp/cap --steps 300 --pool 20000  # quick

The model is a plain transformers ``VisionEncoderDecoderModel`` (the architecture, as data, is
``arpo/demo/architectures/captioner.json``) with a ``TrOCRProcessor`` (image processor and the
world's word-level tokenizer), saved with ``save_pretrained``, so it loads through exactly the
path a real captioner takes (:meth:`arpo.tools.captioner.Captioner.from_pretrained`). It reads
pixels only: it is trained by cross-entropy on rendered scenes (the ``caption-train`` seeds,
disjoint from the CLIPs' and from the held-out scenes) against their canonical prompts, objects
in reading order (top left first, groups last) so that the target follows from the image.

Checkpoints and the rendered pool live in ``--work`` and a rerun with the same arguments resumes
(:class:`arpo.demo.train.Checkpoint`); scenes, batches and weights come from fixed seeds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import replace
from importlib.resources import files
from pathlib import Path
from typing import Any

from arpo.demo.clip_model import architecture, build_tokenizer, world_words
from arpo.demo.scenes import ATTRIBUTES, Scene, SceneObject, attribute_score, canonical_prompt
from arpo.demo.train import (
    Checkpoint,
    _cached_pool,
    _schedule,
    finish_training,
    run_training,
    training_parser,
)
from arpo.demo.world import POSITION_ANCHORS

log = logging.getLogger("arpo.demo.train_captioner")
MAX_TOKENS = 48  # the longest canonical prompt (three objects, a gradient) is 31 words


def _reading_order(obj: SceneObject) -> tuple[int, float, float, str, str]:
    if obj.position is None:
        return (1, 0.0, 0.0, obj.shape, obj.colour)
    x, y = POSITION_ANCHORS[obj.position]
    return (0, y, x, obj.shape, obj.colour)


def caption_target(scene: Scene) -> str:
    """What the captioner learns to write for ``scene``: its canonical prompt, objects in an
    order the image shows (reading order, groups last, by shape and colour)."""
    return canonical_prompt(
        replace(scene, objects=tuple(sorted(scene.objects, key=_reading_order)))
    )


def build_captioner(spec: dict[str, Any], tokenizer: Any) -> tuple[Any, Any]:
    """A new, untrained captioner of architecture ``spec`` and its processor."""
    import transformers

    side = spec["image_size"]
    encoder_cfg = dict(spec["encoder"])
    encoder = transformers.AutoConfig.for_model(
        encoder_cfg.pop("model_type"), image_size=side, num_channels=3, **encoder_cfg
    )
    decoder_cfg = dict(spec["decoder"])
    decoder = transformers.AutoConfig.for_model(
        decoder_cfg.pop("model_type"),
        vocab_size=len(tokenizer),
        is_decoder=True,
        add_cross_attention=True,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **decoder_cfg,
    )
    config = transformers.VisionEncoderDecoderConfig(encoder=encoder, decoder=decoder)
    config.decoder_start_token_id = tokenizer.bos_token_id
    config.pad_token_id = tokenizer.pad_token_id
    config.eos_token_id = tokenizer.eos_token_id
    model = transformers.VisionEncoderDecoderModel(config)
    model.generation_config = transformers.GenerationConfig(
        decoder_start_token_id=tokenizer.bos_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        max_new_tokens=MAX_TOKENS,
    )
    preprocess = spec["preprocess_cfg"]
    image_processor = transformers.ViTImageProcessor(
        size={"height": side, "width": side},
        resample=3,  # bicubic, as the pool is resized
        image_mean=preprocess["mean"],
        image_std=preprocess["std"],
    )
    return model, transformers.TrOCRProcessor(image_processor=image_processor, tokenizer=tokenizer)


def _labels(tokenizer: Any, texts: list[str]) -> Any:
    """Token ids after the start token, padded with -100 (ignored by the loss)."""
    encoded = tokenizer(texts, padding=True, return_tensors="pt")
    labels = encoded["input_ids"][:, 1:].clone()
    labels[encoded["attention_mask"][:, 1:] == 0] = -100
    return labels


def train(
    out: Path,
    *,
    arch: str | Path = "captioner",
    steps: int,
    batch: int,
    pool_size: int,
    lr: float,
    seed: int | None = None,
    work: Path | None = None,
    checkpoint_every: int = 100,
    eval_every: int = 0,
    evaluate_scenes: int = 300,
    until: int | None = None,
) -> dict[str, Any]:
    """Train a captioner to ``out`` on the ``steps``-step schedule; with ``until``, stop and
    save after that many of its steps (the checkpoints are the full run's, so a later
    ``until`` or none goes on from them)."""
    import torch

    started = time.time()
    spec = architecture_spec(arch)
    seed = spec["training"]["seed"] if seed is None else seed
    namespace = spec["training"]["scenes"]
    side = spec["image_size"]
    recipe = {
        "arch": spec,
        "steps": steps,
        "batch": batch,
        "pool": pool_size,
        "lr": lr,
        "seed": seed,
    }
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]
    work = work or Path(".arpo-train") / f"captioner-{digest}"
    work.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(world_words(), clean_up_spaces=True)
    torch.manual_seed(seed)
    model, processor = build_captioner(spec, tokenizer)
    log.info("captioner: %.2f M parameters", sum(p.numel() for p in model.parameters()) / 1e6)
    log.info("rendering (or loading) %d training scenes from %r...", pool_size, namespace)
    scenes, pixels = _cached_pool(work, pool_size, namespace, side)
    targets = [caption_target(scene) for scene in scenes]
    log.info("pool ready in %.0f s", time.time() - started)
    mean = torch.tensor(spec["preprocess_cfg"]["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(spec["preprocess_cfg"]["std"]).view(1, 3, 1, 1)

    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(steps))
    rng = random.Random(f"caption-batches:{seed}")
    checkpoint = Checkpoint(work, recipe)
    first, spent = checkpoint.resume_training(model, optimizer, schedule, rng)
    resumed_at = time.time()

    def elapsed() -> float:
        return spent + time.time() - resumed_at

    last = steps if until is None else min(until, steps)
    model.train()
    for step in range(first, last):
        index = rng.sample(range(pool_size), batch)
        images = torch.from_numpy(pixels[index]).permute(0, 3, 1, 2).float().div(255)
        loss = model(
            pixel_values=(images - mean) / std,
            labels=_labels(tokenizer, [targets[i] for i in index]),
        ).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        done = step + 1
        if step % 50 == 0 or done == last:
            log.info("step %d/%d loss %.3f (%.0f s)", done, steps, loss.item(), elapsed())
        if done % checkpoint_every == 0 and done < steps:
            checkpoint.save_training(model, optimizer, schedule, rng, done, elapsed())
        if eval_every and done % eval_every == 0 and done < last:
            model.eval()
            quick = caption_accuracy(_InTraining(model, processor), scenes=100)
            log.info("  held-out check: %s", quick)
            model.train()

    if last < steps and last % checkpoint_every:  # so a later run goes on from here
        checkpoint.save_training(model, optimizer, schedule, rng, last, elapsed())
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    report = {
        "arch": str(arch) if str(arch) == "captioner" else spec,
        "scenes": namespace,
        "parameters": sum(p.numel() for p in model.parameters()),
        "steps": steps,
        "until": last,
        "batch": batch,
        "pool": pool_size,
        "lr": lr,
        "seed": seed,
    }
    return finish_training(out, report, elapsed(), lambda: evaluate_folder(out, evaluate_scenes))


def architecture_spec(arch: str | Path = "captioner") -> dict[str, Any]:
    """The captioner's architecture and recipe: the shipped ``architectures/captioner.json``
    for ``captioner``, else the JSON file at ``arch``."""
    if str(arch) == "captioner":
        arch = Path(str(files("arpo.demo").joinpath("architectures", "captioner.json")))
    return architecture(arch)


class _InTraining:
    """The model being trained, captioning the way :class:`Captioner` does (progress checks)."""

    def __init__(self, model: Any, processor: Any) -> None:
        from arpo.tools.captioner import Captioner

        self._captioner = Captioner(model, processor, name="training", batch_size=50)

    def caption(self, images: Any) -> list[str]:
        return self._captioner.caption(images)


def caption_accuracy(
    captioner: Any, scenes: int = 300, indices: Sequence[int] | None = None
) -> dict[str, Any]:
    """Held-out accuracy of ``captioner`` (anything with ``caption(images)``) on the held-out
    scenes ``indices`` (default the first ``scenes``): per attribute on one-object scenes (its
    caption states that attribute rightly, among scenes that show it), and attribute F1 on
    scenes of 1-3 objects."""
    from arpo.demo.evaluate import heldout_scene, render_scene

    chosen = list(range(scenes) if indices is None else indices)
    single = [heldout_scene(i, 1) for i in chosen]
    captions = captioner.caption([render_scene(s, i) for i, s in zip(chosen, single, strict=True)])
    right = dict.fromkeys(ATTRIBUTES, 0)
    shown = dict.fromkeys(ATTRIBUTES, 0)
    for scene, text in zip(single, captions, strict=True):
        score = attribute_score(scene, text)
        for fact in score.hits:
            right[_attribute_of(fact)] += 1
        for fact in (*score.hits, *score.misses):
            shown[_attribute_of(fact)] += 1
    mixed = [heldout_scene(i) for i in chosen]
    texts = captioner.caption([render_scene(s, i) for i, s in zip(chosen, mixed, strict=True)])
    f1 = [attribute_score(s, t).f1 for s, t in zip(mixed, texts, strict=True)]
    return {
        "attribute_accuracy_one_object": {
            name: round(right[name] / shown[name], 3) for name in ATTRIBUTES if shown[name]
        },
        "attribute_f1_mixed": round(sum(f1) / len(f1), 3),
        "heldout_scenes": len(chosen),
    }


def _attribute_of(fact: str) -> str:
    """The attribute a described fact is about: "shape star" -> shape, "background gradient
    from red" -> background."""
    return fact.split()[0]


def evaluate_folder(folder: Path, scenes: int = 300) -> dict[str, Any]:
    """Held-out metrics of a saved captioner, loaded through arpo's real captioner path."""
    from arpo.tools.captioner import Captioner

    captioner = Captioner.from_pretrained(str(folder), device="cpu", batch_size=50)
    return caption_accuracy(captioner, scenes)


def main() -> None:
    parser = training_parser(
        __doc__,
        arch="captioner",
        arch_help="captioner, or the path of an architecture JSON",
        steps=8000,
        batch=96,
        pool=60_000,
        eval_every=500,
        stops_early=True,
    )
    run_training(parser.parse_args(), train, evaluate_folder, log)


if __name__ == "__main__":
    main()
