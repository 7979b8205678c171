"""The demo CLIP: its architecture (data), its word-level tokenizer, and where it ships.

The model is a plain open_clip model saved as a ``local-dir:`` folder (open_clip_config.json,
weights, tokenizer files), so it loads through exactly the code path of real checkpoints
(:meth:`arpo.tools.clip.ClipScorer.from_pretrained`). A word-level tokenizer over the world's
words keeps the text embedding tiny (the real BPE vocabulary has 49,408 rows).
"""

from __future__ import annotations

import json
import random
import re
from importlib.resources import files
from pathlib import Path
from typing import Any

from arpo.demo.world import SYNONYMS

PAD, UNK, BOS, EOS = "[PAD]", "[UNK]", "[BOS]", "[EOS]"
CONTEXT_LENGTH = 56
_WORD = re.compile(r"\w+|[^\w\s]+")

#: Where the architectures live, as data: ``scorer.json`` (the CLIP the search uses) and
#: ``judge.json`` (the held-out CLIP that judges the bench and that the search never sees).
ARCHITECTURES = ("scorer", "judge")


def architecture(name_or_path: str | Path) -> dict[str, Any]:
    """An architecture by name (one of :data:`ARCHITECTURES`) or from a JSON file: open_clip's
    ``model_cfg`` (without the vocabulary size, which the tokenizer decides), its
    ``preprocess_cfg`` and the ``training`` recipe (scene seeds, seed, hard negatives)."""
    path = Path(name_or_path)
    if str(name_or_path) in ARCHITECTURES:
        path = Path(str(files("arpo.demo").joinpath("architectures", f"{name_or_path}.json")))
    if not path.is_file():
        raise FileNotFoundError(
            f"no demo CLIP architecture {str(name_or_path)!r}: use one of "
            f"{', '.join(ARCHITECTURES)} or the path of a JSON file like them"
        )
    return json.loads(path.read_text())


def demo_clip_dir() -> Path:
    """The packaged, trained demo CLIP folder (use as ``local-dir:<this>``): the search's."""
    return Path(str(files("arpo.demo").joinpath("clip")))


def demo_judge_dir() -> Path:
    """The packaged held-out judge CLIP: trained on other scenes, from another seed, with
    another architecture; the bench judges image similarity with it, the search never uses it."""
    return Path(str(files("arpo.demo").joinpath("judge")))


def demo_captioner_dir() -> Path:
    """The packaged demo captioner (a transformers folder): reads a render, writes its prompt;
    trained by :mod:`arpo.demo.train_captioner` on scenes neither CLIP trained on."""
    return Path(str(files("arpo.demo").joinpath("captioner")))


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


def build_tokenizer(words: list[str], *, clean_up_spaces: bool = False) -> Any:
    """A fast word-level tokenizer; [EOS] gets the highest id, which open_clip's default
    argmax pooling takes as the end of the text. ``clean_up_spaces``: decoding writes "left,
    on" rather than "left , on" (for the captioner, which writes text)."""
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
        clean_up_tokenization_spaces=clean_up_spaces,
    )


#: What every demo tower's text config adds: the word-level tokenizer saved beside the weights.
_TOKENIZER_CFG = {"hf_tokenizer_name": "local", "tokenizer_kwargs": {"clean": "whitespace"}}


def model_config(arch: dict[str, Any], vocab_size: int) -> dict[str, Any]:
    """The ``open_clip_config.json`` of a demo model of architecture ``arch``."""
    model_cfg = arch["model_cfg"]
    text_cfg = {
        **model_cfg["text_cfg"],
        "context_length": CONTEXT_LENGTH,
        **_TOKENIZER_CFG,
        "vocab_size": vocab_size,
    }
    return {
        "model_cfg": {**model_cfg, "text_cfg": text_cfg},
        "preprocess_cfg": arch["preprocess_cfg"],
    }
