"""Vocabulary embeddings on disk: a second process starts from them, and a changed vocabulary,
another model or a corrupt file never serves stale rows."""

from __future__ import annotations

from pathlib import Path

import torch

from arpo.config import Settings
from arpo.tools.clip import ClipScorer
from arpo.tools.text_cache import TextEmbeddingCache
from arpo.tools.toolbox import Toolbox
from arpo.tools.vocabulary import Vocabulary

PHRASES = ["a red star", "a blue heart", "oil painting", "soft light", "a lighthouse"]


class CountingModel:
    """An open_clip model that counts the texts reaching its text tower; ``shift`` makes it
    another model (its text embeddings change)."""

    def __init__(self, model, shift: float = 0.0) -> None:
        self.model = model
        self.shift = shift
        self.texts = 0

    def eval(self):
        return self

    def to(self, device):
        return self

    def encode_text(self, tokens):
        self.texts += len(tokens)
        features = self.model.encode_text(tokens)
        return features + self.shift * torch.ones_like(features)

    def encode_image(self, pixels):
        return self.model.encode_image(pixels)


def scorer(tiny_models: Toolbox, shift: float = 0.0) -> tuple[ClipScorer, CountingModel]:
    shared = tiny_models.scorer
    model = CountingModel(shared.model, shift)
    return ClipScorer(model, shared.preprocess, shared.tokenizer, name="same-name"), model


def test_a_second_process_loads_the_rows_and_embeds_only_two_probes(
    tiny_models: Toolbox, tmp_path: Path
) -> None:
    first, first_model = scorer(tiny_models)
    cache = TextEmbeddingCache(tmp_path)
    assert cache.load(first, PHRASES) is False  # nothing stored yet
    cache.save(first, PHRASES)
    assert first_model.texts == len(PHRASES)

    second, second_model = scorer(tiny_models)  # a new process: an empty in-memory cache
    assert cache.load(second, PHRASES) is True
    assert second_model.texts == 2  # the first and last phrase, to check the model
    assert torch.allclose(second.encode_texts(PHRASES), first.encode_texts(PHRASES), atol=1e-5)
    assert second_model.texts == 2  # every phrase came from the stored rows


def test_another_vocabulary_is_another_file(tiny_models: Toolbox, tmp_path: Path) -> None:
    one, _ = scorer(tiny_models)
    cache = TextEmbeddingCache(tmp_path)
    cache.save(one, PHRASES)
    assert cache.path(one, PHRASES) != cache.path(one, [*PHRASES, "watercolor"])
    assert cache.load(scorer(tiny_models)[0], [*PHRASES, "watercolor"]) is False


def test_a_changed_model_under_the_same_name_is_not_served(
    tiny_models: Toolbox, tmp_path: Path
) -> None:
    cache = TextEmbeddingCache(tmp_path)
    cache.save(scorer(tiny_models)[0], PHRASES)
    retrained, model = scorer(tiny_models, shift=0.5)  # same name, other weights
    assert cache.load(retrained, PHRASES) is False
    retrained.encode_texts(PHRASES)
    assert model.texts == 2 + len(PHRASES)  # the probes, then everything embedded again


def test_a_corrupt_file_is_rebuilt_not_trusted(tiny_models: Toolbox, tmp_path: Path) -> None:
    cache = TextEmbeddingCache(tmp_path)
    one, _ = scorer(tiny_models)
    cache.path(one, PHRASES).parent.mkdir(parents=True, exist_ok=True)
    cache.path(one, PHRASES).write_bytes(b"not safetensors at all")
    assert cache.load(one, PHRASES) is False
    cache.save(one, PHRASES)
    assert cache.load(scorer(tiny_models)[0], PHRASES) is True


def test_the_toolbox_stores_its_vocabulary_once_and_a_new_toolbox_reads_it(
    tiny_models: Toolbox, tmp_path: Path
) -> None:
    vocabulary = Vocabulary.from_mapping({"subject": PHRASES[:3], "style": PHRASES[3:]})
    first_scorer, first_model = scorer(tiny_models)
    settings = Settings(home=tmp_path)
    Toolbox(settings, scorer=first_scorer, vocabulary=vocabulary).phrase_ranker  # noqa: B018
    assert first_model.texts == len(PHRASES)
    assert list((tmp_path / "cache" / "text-embeddings").glob("*.safetensors"))
    second_scorer, second_model = scorer(tiny_models)
    said: list[str] = []
    Toolbox(settings, scorer=second_scorer, vocabulary=vocabulary).embed_vocabulary(said.append)
    assert second_model.texts == 2
    assert said == [f"phrase vocabulary: {len(PHRASES)} embeddings from the cache"]
