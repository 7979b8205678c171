"""Model presets: named bundles of models that replace the configured ones.

A preset is data: a JSON file beside this module that names, by name, the builders that make
its models (looked up in :mod:`arpo.tools.registry`): ``"builder"`` (a preset builder, which
says where the models are, building them first if needed) and ``"renderer"`` (the renderer
builder that loads its text-to-image model, ``"diffusers"`` unless it says otherwise). A
``"provider"`` entry names a module to import first, which registers builders that live
outside ``arpo.tools`` (the demo world's, ``arpo.demo.preset``).

``tiny`` (built in here) builds random-weight Stable Diffusion and open_clip models from fixed
seeds, saves them once under ``ARPO_HOME/presets/tiny`` and returns their *directories*, which
are then loaded through the same ``from_pretrained`` / open_clip ``local-dir:`` paths as real
checkpoints. Its images are noise: it exists so every code path runs in seconds on a CPU
without downloads. ``tiny-sdxl``, ``tiny-sd3`` and ``tiny-flux`` do the same for those model
families (:mod:`arpo.tools.presets.tiny_families`, their JSONs' provider) and share ``tiny``'s
CLIP scorer.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from arpo.errors import InvalidOptionError
from arpo.tools import registry

log = logging.getLogger(__name__)

PRESETS = tuple(
    sorted(
        entry.name.removesuffix(".json")
        for entry in files(__name__).iterdir()
        if entry.name.endswith(".json")
    )
)


@dataclass(frozen=True)
class PresetModels:
    """Where a preset's models live, and the run-option defaults that suit them.

    ``renderer`` names the renderer builder (``"diffusers"``: ``t2i_model`` is a diffusers
    folder) and ``provider`` the module that registers it when it is not built in.
    ``t2i_name`` / ``clip_name`` name the models independently of the data directory they
    were built in (for :meth:`arpo.tools.toolbox.Toolbox.model_identity`); empty means the
    reference itself is such a name.
    """

    t2i_model: str
    clip_model: str
    clip_pretrained: str | None
    option_defaults: dict[str, Any] = field(default_factory=dict)
    renderer: str = "diffusers"
    vocabulary_dir: Path | None = None
    # vocabulary category -> prompt component (remix), where a preset's vocabulary uses a
    # category name for something other than the packaged vocabulary means by it
    vocabulary_components: dict[str, str] = field(default_factory=dict)
    provider: str | None = None
    t2i_name: str = ""
    clip_name: str = ""
    # family profile values this preset's models need (the tiny models render at 128 px)
    family_overrides: dict[str, Any] = field(default_factory=dict)
    # an open_clip reference the search never uses, which `arpo bench` judges with by default
    judge_model: str | None = None
    # a transformers captioner (folder or hub id) for first prompts when ARPO_CAPTION_MODEL
    # is unset
    caption_model: str | None = None

    @property
    def t2i_identity(self) -> str:
        return self.t2i_name or self.t2i_model

    @property
    def clip_identity(self) -> str:
        if self.clip_name:
            return self.clip_name
        if self.clip_pretrained and not self.clip_model.startswith(("local-dir:", "hf-hub:")):
            return f"{self.clip_model}/{self.clip_pretrained}"
        return self.clip_model


@cache
def preset_spec(name: str) -> dict[str, Any]:
    if name not in PRESETS:
        raise InvalidOptionError(
            f"unknown preset '{name}'; choose one of {', '.join(PRESETS)} or 'none'."
        )
    return json.loads(files(__name__).joinpath(f"{name}.json").read_text())


def prepare_preset(name: str, presets_dir: Path) -> PresetModels:
    """Build the preset's models on first use (once per data directory) and say where they are.

    The builders are looked up by the names the preset's JSON gives; the JSON's own entries
    (renderer, provider, option defaults, vocabulary components, family overrides) override
    the builder's.
    """
    spec = preset_spec(name)
    provider = spec.get("provider")
    renderer = spec.get("renderer", "diffusers")
    registry.renderer_builder(renderer, provider=provider)  # an unknown name fails before a build
    build = registry.preset_builder(spec.get("builder", name), provider=provider)
    models = build(spec, presets_dir / name)
    return replace(
        models,
        renderer=renderer,
        provider=provider,
        option_defaults={**models.option_defaults, **spec.get("option_defaults", {})},
        vocabulary_components={
            **models.vocabulary_components,
            **spec.get("vocabulary_components", {}),
        },
        family_overrides={**models.family_overrides, **spec.get("family_overrides", {})},
    )


def build_tiny(spec: dict[str, Any], root: Path) -> PresetModels:
    """The ``tiny`` builder: random-weight models from the spec's seeds, saved under ``root``."""
    return tiny_preset_models(spec, root, _build_tiny_t2i)


def tiny_preset_models(
    spec: dict[str, Any], root: Path, build_t2i: Callable[[dict[str, Any], int, Path], None]
) -> PresetModels:
    """Build a tiny preset's models where they are missing, and say where they are.

    ``build_t2i(spec["t2i"], spec["seed"], folder)`` saves the diffusers pipeline to
    ``root/t2i``. The scorer is ``spec["clip"]``: an open_clip spec, built to ``root/clip``, or
    the name of another preset whose scorer this one shares (``"clip": "tiny"``), built (from
    that preset's spec and seed, so it is the same model whoever builds it first) to that
    preset's own folder beside ``root``.
    """
    t2i_dir = root / "t2i"
    if not (t2i_dir / "model_index.json").is_file():
        _build_atomically(t2i_dir, lambda tmp: build_t2i(spec["t2i"], spec["seed"], tmp))
    clip_root, clip_spec = root, spec
    if isinstance(spec["clip"], str):
        clip_root, clip_spec = root.parent / spec["clip"], preset_spec(spec["clip"])
    clip_dir = clip_root / "clip"
    if not (clip_dir / "open_clip_config.json").is_file():
        _build_atomically(
            clip_dir, lambda tmp: _build_tiny_clip(clip_spec["clip"], clip_spec["seed"], tmp)
        )
    return PresetModels(
        t2i_model=str(t2i_dir),
        clip_model=f"local-dir:{clip_dir}",
        clip_pretrained=None,
        t2i_name=f"{root.name}/t2i",
        clip_name=f"{clip_root.name}/clip",
    )


def _build_atomically(target: Path, build: Any) -> None:
    """Build into a temp dir and rename, so a crash never leaves a half-saved model behind."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
    try:
        build(tmp)
        if target.exists():  # another process finished first
            shutil.rmtree(tmp)
            return
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("built preset models in %s", target)


def clip_tokenizer_offline() -> Any:
    """A real CLIP BPE tokenizer built from the vocabulary file open_clip ships (no hub).

    transformers 5 ignores ``vocab_file=``/``merges_file=`` and ``from_pretrained(hub_id)``
    offline returns an *empty* tokenizer, so the vocab dict and merge list are passed directly.
    """
    from open_clip.tokenizer import SimpleTokenizer
    from transformers import CLIPTokenizer

    simple = SimpleTokenizer()
    # open_clip names the special tokens <start_of_text>/<end_of_text>; transformers' CLIP
    # tokenizer expects <|startoftext|>/<|endoftext|> at the same ids.
    renamed = {"<start_of_text>": "<|startoftext|>", "<end_of_text>": "<|endoftext|>"}
    vocab = {renamed.get(token, token): index for token, index in simple.encoder.items()}
    merges = [pair for pair, _ in sorted(simple.bpe_ranks.items(), key=lambda item: item[1])]
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)


def _build_tiny_t2i(spec: dict[str, Any], seed: int, out: Path) -> None:
    import torch
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from diffusers.utils import logging as diffusers_logging
    from transformers import CLIPTextConfig, CLIPTextModel
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(**spec["unet"])
    torch.manual_seed(seed + 1)
    vae = AutoencoderKL(**spec["vae"])
    torch.manual_seed(seed + 2)
    text_encoder = CLIPTextModel(CLIPTextConfig(**spec["text_encoder"]))
    pipe = StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=clip_tokenizer_offline(),
        scheduler=DDIMScheduler(**spec["scheduler"]),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(out)


def _build_tiny_clip(spec: dict[str, Any], seed: int, out: Path) -> None:
    import open_clip
    import torch
    from safetensors.torch import save_file

    (out / "open_clip_config.json").write_text(json.dumps(spec, indent=2))
    torch.manual_seed(seed)
    logging.disable(logging.WARNING)  # open_clip warns that the new model has random weights
    try:
        model = open_clip.create_model(f"local-dir:{out}", load_weights=False)
    finally:
        logging.disable(logging.NOTSET)
    state = {key: value.contiguous() for key, value in model.state_dict().items()}
    save_file(state, str(out / "open_clip_model.safetensors"))


registry.register("preset", "tiny", build_tiny)
