"""The demo CLIP: its architecture (data), its word-level tokenizer, and where it ships.

The model is a plain open_clip model saved as a ``local-dir:`` folder (open_clip_config.json,
weights, tokenizer files), so it loads through exactly the code path of real checkpoints
(:meth:`arpo.tools.clip.ClipScorer.from_pretrained`). A word-level tokenizer over the world's
words keeps the text embedding tiny (the real BPE vocabulary has 49,408 rows).
"""

from __future__ import annotations

import random
import re
from importlib.resources import files
from pathlib import Path
from typing import Any

from arpo.demo.world import SYNONYMS

PAD, UNK, BOS, EOS = "[PAD]", "[UNK]", "[BOS]", "[EOS]"
CONTEXT_LENGTH = 56
_WORD = re.compile(r"\w+|[^\w\s]+")

#: The architecture. A small ResNet vision tower: it learns position and count far faster
#: than a small ViT on a CPU (measured while designing the demo world).
MODEL_CFG: dict[str, Any] = {
    "embed_dim": 128,
    "vision_cfg": {"image_size": 64, "layers": [1, 1, 1, 1], "width": 16, "head_width": 16},
    "text_cfg": {
        "context_length": CONTEXT_LENGTH,
        "width": 64,
        "heads": 2,
        "layers": 2,
        "hf_tokenizer_name": "local",  # open_clip then loads the tokenizer from the folder
        "tokenizer_kwargs": {"clean": "whitespace"},
    },
}
PREPROCESS_CFG = {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "interpolation": "bicubic"}


def demo_clip_dir() -> Path:
    """The packaged, trained demo CLIP folder (use as ``local-dir:<this>``)."""
    return Path(str(files("arpo.demo").joinpath("clip")))


def world_words(samples: int = 4000) -> list[str]:
    """Every word the world's captions and synonyms use, in a stable order."""
    from arpo.demo.scenes import caption, sample_scene
    from arpo.demo.vocabulary_build import demo_vocabulary_phrases

    words: set[str] = set()
    rng = random.Random("tokenizer")
    texts = [caption(sample_scene(rng), rng) for _ in range(samples)]
    texts += list(SYNONYMS) + list(SYNONYMS.values())
    for phrases in demo_vocabulary_phrases().values():
        texts += list(phrases)
    for text in texts:
        words.update(_WORD.findall(text.lower()))
    return sorted(words)


def build_tokenizer(words: list[str]) -> Any:
    """A fast word-level tokenizer; [EOS] gets the highest id, which open_clip's default
    argmax pooling takes as the end of the text."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    vocab = {PAD: 0, UNK: 1, BOS: 2}
    for word in words:
        vocab.setdefault(word, len(vocab))
    vocab[EOS] = len(vocab)
    core = Tokenizer(WordLevel(vocab, unk_token=UNK))
    core.normalizer = normalizers.Lowercase()
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A {EOS}", special_tokens=[(BOS, vocab[BOS]), (EOS, vocab[EOS])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        model_max_length=CONTEXT_LENGTH,
    )


def model_config(vocab_size: int) -> dict[str, Any]:
    cfg = {**MODEL_CFG, "text_cfg": {**MODEL_CFG["text_cfg"], "vocab_size": vocab_size}}
    return {"model_cfg": cfg, "preprocess_cfg": PREPROCESS_CFG}
