"""CLIP scoring on the tiny preset's open_clip model, its caches, and model-reference checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from arpo.errors import ModelNotAvailableError
from arpo.tools.clip import ClipScorer, check_clip_ref
from arpo.tools.tokens import clip_token_count


class CountingModel:
    """Delegates to an open_clip model and counts what reaches its encoders."""

    def __init__(self, model) -> None:
        self.model = model
        self.text_batches: list[int] = []
        self.image_batches: list[int] = []

    def eval(self):
        return self

    def to(self, device):
        return self

    def encode_text(self, tokens):
        self.text_batches.append(len(tokens))
        return self.model.encode_text(tokens)

    def encode_image(self, pixels):
        self.image_batches.append(len(pixels))
        return self.model.encode_image(pixels)


@pytest.fixture
def counted(tiny_models):
    """A fresh scorer (empty caches) over the session's tiny CLIP model, with call counters."""
    shared = tiny_models.scorer
    model = CountingModel(shared.model)
    scorer = ClipScorer(model, shared.preprocess, shared.tokenizer, name="counted", batch_size=4)
    return scorer, model


def fresh(tiny_models) -> ClipScorer:
    shared = tiny_models.scorer
    return ClipScorer(shared.model, shared.preprocess, shared.tokenizer, name="fresh")


def images() -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [
        Image.fromarray(rng.integers(0, 256, (40 + 8 * i, 48, 3), dtype=np.uint8)) for i in range(3)
    ]


def test_tiny_scorer_loads_from_local_dir(tiny_models):
    scorer = tiny_models.scorer
    assert scorer.name.startswith("local-dir:")
    assert scorer.name == tiny_models.preset.clip_model
    assert scorer.device == "cpu"


def test_embeddings_are_normalised(tiny_models):
    scorer = fresh(tiny_models)
    texts = scorer.encode_texts(["a cat", "a dog on a red sofa", "oil painting"])
    pictures = scorer.encode_images(images())
    assert texts.shape == (3, 32)
    assert pictures.shape == (3, 32)
    assert torch.allclose(texts.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert torch.allclose(pictures.norm(dim=-1), torch.ones(3), atol=1e-5)


def test_text_embeddings_are_cached(counted):
    scorer, model = counted
    first = scorer.encode_texts(["a cat", "a dog", "a cat"])
    assert model.text_batches == [2]  # duplicates encoded once
    second = scorer.encode_texts(["a dog", "a cat"])
    assert model.text_batches == [2]
    assert torch.equal(second[0], first[1])
    assert torch.equal(second[1], first[0])
    scorer.encode_texts(["a cat", "a bird"])
    assert model.text_batches == [2, 1]  # only the new text


def test_text_batches_respect_batch_size(counted):
    scorer, model = counted
    scorer.encode_texts([f"phrase {i}" for i in range(10)])
    assert model.text_batches == [4, 4, 2]


def test_text_cache_is_bounded(tiny_models):
    shared = tiny_models.scorer
    model = CountingModel(shared.model)
    scorer = ClipScorer(model, shared.preprocess, shared.tokenizer, name="lru", cache_size=2)
    scorer.encode_texts(["a", "b"])
    scorer.encode_texts(["a"])  # refreshes "a"
    scorer.encode_texts(["c"])  # evicts "b", the least recently used
    assert model.text_batches == [2, 1]
    scorer.encode_texts(["a", "c"])
    assert model.text_batches == [2, 1]
    scorer.encode_texts(["b"])
    assert model.text_batches == [2, 1, 1]


def test_batch_scoring_equals_single_scoring(tiny_models):
    texts = ["a cat", "a dog on a red sofa", "oil painting, dramatic lighting", "x"]
    reference = fresh(tiny_models).encode_images(images()[:1])[0]
    batch = fresh(tiny_models).text_similarity(texts, reference)
    singles = [fresh(tiny_models).text_similarity([t], reference)[0] for t in texts]
    assert np.allclose(batch, singles, atol=1e-5)
    pictures = images()
    together = fresh(tiny_models).encode_images(pictures)
    alone = torch.cat([fresh(tiny_models).encode_images([p]) for p in pictures])
    assert torch.allclose(together, alone, atol=1e-5)


def test_image_embeddings_are_cached_by_key(counted):
    scorer, model = counted
    first, second, third = images()
    a = scorer.encode_images([first], keys=["ref"])
    assert model.image_batches == [1]
    # the key decides: a cached key is not encoded again, whatever image comes with it
    b = scorer.encode_images([second, first], keys=["other", "ref"])
    assert model.image_batches == [1, 1]
    assert torch.equal(b[1], a[0])
    assert not torch.allclose(b[0], a[0])
    scorer.encode_images([third], keys=["ref"])
    assert model.image_batches == [1, 1]
    # without keys nothing is cached
    scorer.encode_images([first])
    scorer.encode_images([first])
    assert model.image_batches == [1, 1, 1, 1]


def test_text_similarity_gives_one_cosine_per_text(tiny_models):
    scorer = fresh(tiny_models)
    reference = scorer.encode_images(images()[1:2])[0]
    texts = ["a cat", "a dog", "a house at night", "abstract art", "a red square"]
    scores = scorer.text_similarity(texts, reference)
    assert len(scores) == len(texts)
    assert all(isinstance(s, float) and -1.0 <= s <= 1.0 for s in scores)
    expected = (scorer.encode_texts(texts) @ reference).tolist()
    assert np.allclose(scores, expected)
    assert len(set(scores)) > 1
    assert scorer.text_similarity([], reference) == []


def test_image_similarity_of_an_image_to_itself_is_one(tiny_models):
    scorer = fresh(tiny_models)
    embeddings = scorer.encode_images(images())
    scores = scorer.image_similarity(embeddings, embeddings[0])
    assert scores[0] == pytest.approx(1.0, abs=1e-5)
    assert all(s < 0.9999 for s in scores[1:])


# --------------------------------------------------------------------------- chunked scoring

SHARED = ", ".join(f"a small detail number {k}" for k in range(16))  # about 96 CLIP tokens


def test_a_text_within_the_context_is_embedded_whole_as_before(tiny_models):
    scorer = fresh(tiny_models)
    text = "a red square on a blue background, flat graphic"
    assert scorer.context_length == 77
    assert scorer.token_count(text) == clip_token_count(text)
    assert scorer.chunks(text) == [(text, clip_token_count(text))]
    with torch.inference_mode():
        direct = scorer.model.encode_text(scorer.tokenizer([text])).float()[0]
    assert torch.allclose(scorer.encode_texts([text])[0], direct / direct.norm(), atol=1e-6)


def test_a_long_text_is_scored_in_chunks_of_whole_phrases(tiny_models):
    scorer = fresh(tiny_models)
    assert clip_token_count(SHARED) > 75
    chunks = scorer.chunks(SHARED)
    assert len(chunks) == 2
    assert all(tokens == clip_token_count(chunk) <= 75 for chunk, tokens in chunks)
    assert ", ".join(chunk for chunk, _ in chunks) == SHARED  # every phrase, in order, once
    # the embedding: chunk embeddings averaged by their token counts, normalised again
    rows = fresh(tiny_models).encode_texts([chunk for chunk, _ in chunks])
    weights = torch.tensor([float(tokens) for _, tokens in chunks])
    mean = (weights[:, None] * rows).sum(dim=0) / weights.sum()
    embedded = scorer.encode_texts([SHARED])[0]
    assert torch.allclose(embedded, mean / mean.norm(), atol=1e-6)
    assert embedded.norm() == pytest.approx(1.0, abs=1e-5)


def test_words_past_the_context_change_the_score(tiny_models):
    scorer = fresh(tiny_models)
    reference = scorer.encode_images(images()[:1])[0]
    red, blue = f"{SHARED}, a red square", f"{SHARED}, a blue circle at night"
    # open_clip alone truncates both to the same 77 tokens: it cannot tell them apart
    assert torch.equal(scorer.tokenizer([red]), scorer.tokenizer([blue]))
    with torch.inference_mode():
        truncated = scorer.model.encode_text(scorer.tokenizer([red, blue])).float()
    assert torch.equal(truncated[0], truncated[1])
    scores = scorer.text_similarity([SHARED, red, blue], reference)
    assert len({round(score, 6) for score in scores}) == 3


def test_chunks_are_batched_and_cached_like_texts(counted):
    scorer, model = counted  # batch size 4
    long_texts = [f"{SHARED}, a red square", f"{SHARED}, a blue circle"]
    scorer.encode_texts([*long_texts, "a cat"])
    # "a cat" and three distinct chunks (the first chunk is shared): one batch of 4
    assert model.text_batches == [4]
    scorer.encode_texts(long_texts)
    assert model.text_batches == [4]
    first_chunk = scorer.chunks(long_texts[0])[0][0]
    scorer.encode_texts([first_chunk])  # a chunk is cached as a text of its own
    assert model.text_batches == [4]


def test_a_tokenizer_it_cannot_ask_is_never_chunked(tiny_models):
    shared = tiny_models.scorer

    def opaque(texts):
        return shared.tokenizer(texts)

    scorer = ClipScorer(shared.model, shared.preprocess, opaque, name="opaque")
    assert scorer.token_count(SHARED) is None
    assert scorer.chunks(SHARED) == [(SHARED, 0)]
    assert scorer.encode_texts([SHARED]).shape == (1, 32)


# --------------------------------------------------------------------------- reference checks


def test_local_dir_without_config(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    (folder / "open_clip_model.safetensors").write_bytes(b"")
    with pytest.raises(ModelNotAvailableError) as info:
        check_clip_ref(f"local-dir:{folder}", None)
    message = str(info.value)
    assert str(folder) in message
    assert "open_clip_config.json" in message
    assert "ARPO_CLIP_MODEL" in message


def test_local_dir_config_without_weights(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    (folder / "open_clip_config.json").write_text("{}")
    with pytest.raises(ModelNotAvailableError) as info:
        check_clip_ref(f"local-dir:{folder}", None)
    message = str(info.value)
    assert str(folder) in message
    assert "weights" in message
    assert "ARPO_CLIP_MODEL" in message  # the setting that points at this folder


def test_uncached_hf_hub_model_offline(empty_hub_cache):
    with pytest.raises(ModelNotAvailableError) as info:
        check_clip_ref("hf-hub:nobody/missing", None)
    message = str(info.value)
    assert "'hf-hub:nobody/missing'" in message
    assert "HF_HUB_OFFLINE" in message
    assert "ARPO_CLIP_MODEL" in message


def test_unknown_architecture():
    with pytest.raises(ModelNotAvailableError) as info:
        check_clip_ref("ViT-Q-99", "openai")
    assert "unknown CLIP architecture 'ViT-Q-99'" in str(info.value)
    assert "ARPO_CLIP_MODEL" in str(info.value)


def test_unknown_pretrained_tag():
    with pytest.raises(ModelNotAvailableError) as info:
        check_clip_ref("RN50", "no-such-tag")
    message = str(info.value)
    assert "'no-such-tag'" in message
    assert "openai" in message  # lists the valid tags
    assert "ARPO_CLIP_PRETRAINED" in message


def test_uncached_pretrained_weights_offline(empty_hub_cache):
    with pytest.raises(ModelNotAvailableError) as info:
        check_clip_ref("RN50", "openai")
    message = str(info.value)
    assert "'RN50/openai'" in message
    assert "ARPO_CLIP_PRETRAINED" in message


def test_checkpoint_file_is_accepted_as_pretrained(tmp_path):
    checkpoint = tmp_path / "weights.pt"
    checkpoint.write_bytes(b"")
    check_clip_ref("RN50", str(checkpoint))  # no error: an existing file is a checkpoint


def test_from_pretrained_checks_the_reference_first(tmp_path):
    with pytest.raises(ModelNotAvailableError, match=r"open_clip_config\.json"):
        ClipScorer.from_pretrained(f"local-dir:{tmp_path}", device="cpu")


def test_from_pretrained_wraps_load_failures(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": {"embed_dim": 8}}))
    (folder / "open_clip_model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ModelNotAvailableError) as info:
        ClipScorer.from_pretrained(f"local-dir:{folder}", device="cpu")
    message = str(info.value)
    assert message.startswith(f"cannot load the CLIP model 'local-dir:{folder}'")
    assert "ARPO_CLIP_MODEL" in message


def test_a_call_larger_than_the_text_cache_still_returns_every_row(tiny_models):
    shared = tiny_models.scorer
    scorer = ClipScorer(shared.model, shared.preprocess, shared.tokenizer, name="s", cache_size=2)
    texts = ["a cat", "a dog", "a bird"]
    rows = scorer.encode_texts(texts)
    assert rows.shape == (3, 32)
    assert torch.allclose(rows, fresh(tiny_models).encode_texts(texts), atol=1e-5)


def test_cached_image_evicted_within_a_call_is_still_returned(tiny_models):
    shared = tiny_models.scorer
    scorer = ClipScorer(shared.model, shared.preprocess, shared.tokenizer, name="s", cache_size=1)
    first, second, _ = images()
    a = scorer.encode_images([first], keys=["a"])
    rows = scorer.encode_images([second, first], keys=["b", "a"])
    assert rows.shape == (2, 32)
    assert torch.equal(rows[1], a[0])


# --------------------------------------------------------------------------- half precision


def test_clip_loads_in_float32_on_the_cpu_by_default(tiny_models):
    scorer = tiny_models.scorer
    assert scorer.input_dtype is None
    assert next(scorer.model.parameters()).dtype == torch.float32


def test_clip_in_half_precision_scores_in_float32(tiny_models):
    """bfloat16 runs on the CPU, so the half-precision path is exercised here: weights in
    bfloat16 (LayerNorm in float32), images cast to it, similarities float32 and close."""
    full = tiny_models.scorer
    half = ClipScorer.from_pretrained(full.name, None, device="cpu", dtype="bfloat16")
    assert half.input_dtype == torch.bfloat16
    assert half.model.visual.conv1.weight.dtype == torch.bfloat16
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8))
    reference = half.encode_images([image])[0]
    assert reference.dtype == torch.float32
    texts = ["a cat", "a red square", "a lighthouse at dusk"]
    ours = half.text_similarity(texts, reference)
    theirs = full.text_similarity(texts, full.encode_images([image])[0])
    assert all(isinstance(score, float) for score in ours)
    assert np.allclose(ours, theirs, atol=0.05)


def test_a_byte_level_bpe_reads_every_word(tiny_models):
    assert tiny_models.scorer.unknown_words("a zyxqv lighthouse, 灯台") == []
