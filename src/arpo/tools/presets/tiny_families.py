"""Tiny random-weight SDXL, SD3 and Flux pipelines: the ``tiny-sdxl``, ``tiny-sd3`` and
``tiny-flux`` preset builders.

Like ``tiny`` (Stable Diffusion 1.x), each builds its pipeline from the architecture its JSON
holds, with fixed seeds, saves it with ``save_pretrained`` under ``ARPO_HOME/presets/<name>/t2i``
and shares ``tiny``'s CLIP scorer (``"clip": "tiny"``). Nothing is downloaded: the CLIP
tokenizers come from the BPE file open_clip ships (:func:`clip_tokenizer_offline`) and the T5
tokenizer is built here (:func:`t5_tokenizer_offline`). The saved folders load through
``AutoPipelineForText2Image.from_pretrained`` like real checkpoints, and their
``model_index.json`` and component configs read as the families ``sdxl``, ``sd3`` and
``flux-dev`` (the Flux transformer has ``guidance_embeds``). Their images are noise.

The preset JSONs name this module as their ``provider``, so it is imported (and registers the
builders) only when one of these presets is used.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from pathlib import Path
from typing import Any

from arpo.tools import registry
from arpo.tools.presets import PresetModels, clip_tokenizer_offline, tiny_preset_models

T5_SPECIALS = ("<pad>", "</s>", "<unk>")  # ids 0, 1, 2, as T5 has them


def t5_tokenizer_offline(vocab_size: int, model_max_length: int = 512) -> Any:
    """A small T5 (Unigram, SentencePiece-style) tokenizer built in-process, no hub.

    Pieces: ``<pad>`` = 0, ``</s>`` = 1, ``<unk>`` = 2 (T5's ids), the word-start marker
    ``▁``, every printable ASCII character, then ``▁word`` for the words of the packaged phrase
    vocabulary, most frequent first, as many as fit in ``vocab_size``. Scores are log
    frequencies, below which single characters sit, so known words stay whole and any other
    word is spelled out (nothing printable becomes ``<unk>``). ``</s>`` is appended to every
    sequence, as T5 does. No sentinel (``<extra_id_*>``) tokens: a text encoder never uses them.
    """
    from transformers import T5Tokenizer

    from arpo.tools.vocabulary import load_vocabulary

    chars = [c for c in string.printable if not c.isspace()]
    base = len(T5_SPECIALS) + 1 + len(chars)
    if vocab_size < base:
        raise ValueError(f"a T5 vocabulary needs at least {base} entries, not {vocab_size}")
    counts = Counter(
        word
        for phrase in load_vocabulary().phrases
        for word in re.findall(r"[a-z]+", phrase.lower())
    )
    words = sorted(counts, key=lambda word: (-counts[word], word))[: vocab_size - base]
    total = sum(counts.values())
    floor = math.log(1 / total) - 1.0  # below the rarest word
    vocab = [(token, 0.0) for token in T5_SPECIALS]
    vocab.append(("▁", floor))
    vocab.extend((char, floor - 1.0) for char in chars)
    vocab.extend((f"▁{word}", math.log(counts[word] / total)) for word in words)
    return T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=model_max_length)


def _quiet() -> None:
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()


def _seeded(seed: int, make: Any) -> Any:
    """``make()`` with torch seeded first, so each component's weights depend on its seed only."""
    import torch

    torch.manual_seed(seed)
    return make()


def _clip_text(config: dict[str, Any], seed: int, projection: bool) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    model = CLIPTextModelWithProjection if projection else CLIPTextModel
    return _seeded(seed, lambda: model(CLIPTextConfig(**config)))


def _t5_text(config: dict[str, Any], seed: int) -> Any:
    from transformers import T5Config, T5EncoderModel

    return _seeded(seed, lambda: T5EncoderModel(T5Config(**config)))


def _vae(config: dict[str, Any], seed: int) -> Any:
    from diffusers import AutoencoderKL

    return _seeded(seed, lambda: AutoencoderKL(**config))


def _build_tiny_sdxl_t2i(spec: dict[str, Any], seed: int, out: Path) -> None:
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel

    _quiet()
    pipe = StableDiffusionXLPipeline(
        unet=_seeded(seed, lambda: UNet2DConditionModel(**spec["unet"])),
        vae=_vae(spec["vae"], seed + 1),
        text_encoder=_clip_text(spec["text_encoder"], seed + 2, projection=False),
        text_encoder_2=_clip_text(spec["text_encoder_2"], seed + 3, projection=True),
        tokenizer=clip_tokenizer_offline(),
        tokenizer_2=clip_tokenizer_offline(),
        scheduler=EulerDiscreteScheduler(**spec["scheduler"]),
    )
    pipe.save_pretrained(out)


def _build_tiny_sd3_t2i(spec: dict[str, Any], seed: int, out: Path) -> None:
    from diffusers import (
        FlowMatchEulerDiscreteScheduler,
        SD3Transformer2DModel,
        StableDiffusion3Pipeline,
    )

    _quiet()
    t5 = spec["text_encoder_3"]
    pipe = StableDiffusion3Pipeline(
        transformer=_seeded(seed, lambda: SD3Transformer2DModel(**spec["transformer"])),
        vae=_vae(spec["vae"], seed + 1),
        text_encoder=_clip_text(spec["text_encoder"], seed + 2, projection=True),
        text_encoder_2=_clip_text(spec["text_encoder_2"], seed + 3, projection=True),
        text_encoder_3=_t5_text(t5, seed + 4),
        tokenizer=clip_tokenizer_offline(),
        tokenizer_2=clip_tokenizer_offline(),
        tokenizer_3=t5_tokenizer_offline(t5["vocab_size"], **spec.get("tokenizer_3", {})),
        scheduler=FlowMatchEulerDiscreteScheduler(**spec["scheduler"]),
    )
    pipe.save_pretrained(out)


def _build_tiny_flux_t2i(spec: dict[str, Any], seed: int, out: Path) -> None:
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel

    _quiet()
    t5 = spec["text_encoder_2"]
    pipe = FluxPipeline(
        transformer=_seeded(seed, lambda: FluxTransformer2DModel(**spec["transformer"])),
        vae=_vae(spec["vae"], seed + 1),
        text_encoder=_clip_text(spec["text_encoder"], seed + 2, projection=False),
        text_encoder_2=_t5_text(t5, seed + 3),
        tokenizer=clip_tokenizer_offline(),
        tokenizer_2=t5_tokenizer_offline(t5["vocab_size"], **spec.get("tokenizer_2", {})),
        scheduler=FlowMatchEulerDiscreteScheduler(**spec["scheduler"]),
    )
    pipe.save_pretrained(out)


def build_tiny_sdxl(spec: dict[str, Any], root: Path) -> PresetModels:
    """The ``tiny-sdxl`` builder."""
    return tiny_preset_models(spec, root, _build_tiny_sdxl_t2i)


def build_tiny_sd3(spec: dict[str, Any], root: Path) -> PresetModels:
    """The ``tiny-sd3`` builder."""
    return tiny_preset_models(spec, root, _build_tiny_sd3_t2i)


def build_tiny_flux(spec: dict[str, Any], root: Path) -> PresetModels:
    """The ``tiny-flux`` builder."""
    return tiny_preset_models(spec, root, _build_tiny_flux_t2i)


BUILDERS = {"tiny-sdxl": build_tiny_sdxl, "tiny-sd3": build_tiny_sd3, "tiny-flux": build_tiny_flux}
TINY_FAMILIES = tuple(BUILDERS)  # the preset names, for whoever builds them all (tests)

for _name, _builder in BUILDERS.items():
    registry.register("preset", _name, _builder)
