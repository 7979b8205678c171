"""Token budgets per family, counts with a pipeline's own T5 tokenizer, and cutting texts into
pieces that fit."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from arpo.tools.families import profile_named
from arpo.tools.tokens import (
    budget_for,
    clip_token_count,
    estimated_tokens,
    split_to_fit,
    word_token_count,
)

WORDS = ("a", "red", "blue", "square", "circle", "on", "background", "the", "of", "in")


def tiny_t5_tokenizer() -> Any:
    """A small SentencePiece-style (unigram) T5 tokenizer built offline: known words are one
    piece, anything else falls apart into letters; ``</s>`` ends every text, as T5's does."""
    from tokenizers import Tokenizer, decoders, pre_tokenizers, processors
    from tokenizers.models import Unigram
    from transformers import T5TokenizerFast

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [(f"▁{word}", -1.0) for word in WORDS]
    pieces += [(char, -5.0) for char in "abcdefghijklmnopqrstuvwxyz,."]
    core = Tokenizer(Unigram(pieces, unk_id=2, byte_fallback=False))
    core.pre_tokenizer = pre_tokenizers.Metaspace()
    core.decoder = decoders.Metaspace()
    core.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", 1)]
    )
    return T5TokenizerFast(
        tokenizer_object=core, eos_token="</s>", unk_token="<unk>", pad_token="<pad>", extra_ids=0
    )


def test_the_demo_world_counts_exactly_what_its_clip_reads() -> None:
    """The demo renderer's budget is the demo CLIP's word-level tokens, counted exactly (it
    was estimated from CLIP's BPE, which cost a process 0.2 s to load and over-counted)."""
    import random

    from tokenizers import Tokenizer

    from arpo.demo.clip_model import demo_clip_dir
    from arpo.demo.render import DEMO_PROFILE
    from arpo.demo.scenes import caption, sample_scene

    budget = budget_for(DEMO_PROFILE)
    assert (budget.limit.kind, budget.max_tokens, budget.limit.exact) == ("word", 54, True)
    assert budget.describe() == "54 WORD tokens"
    tokenizer = Tokenizer.from_file(str(demo_clip_dir() / "tokenizer.json"))
    scenes = [sample_scene(random.Random(f"count:{i}")) for i in range(50)]
    texts = [caption(scene, random.Random(i)) for i, scene in enumerate(scenes)]
    texts += ["", "  ", "a red, red... square!!", "two-tone stars; 8-bit (pixel) art", "café ×3"]
    for text in texts:
        assert budget.count(text) == word_token_count(text)
        assert word_token_count(text) + 2 == len(tokenizer.encode(text).ids), text


@pytest.mark.parametrize(
    ("family", "style", "kind", "limit"),
    [
        ("sd1", "tags", "clip", 75),
        ("sdxl", "tags", "clip", 75),
        ("sd3", "sentences", "t5", 255),
        ("flux-dev", "sentences", "t5", 511),
        ("flux-schnell", "sentences", "t5", 255),
        ("pixart-sigma", "sentences", "t5", 299),
    ],
)
def test_budget_follows_the_encoder_that_reads_the_most(
    family: str, style: str, kind: str, limit: int
) -> None:
    budget = budget_for(profile_named(family))
    assert (budget.style, budget.limit.kind, budget.max_tokens) == (style, kind, limit)
    assert budget.long_encoder == (kind != "clip")
    assert budget.limit.exact == (kind == "clip")  # no pipeline: T5 is estimated
    text = "a red fox in a misty forest, oil painting"
    if family != "pixart-sigma":  # PixArt has no CLIP encoder
        assert budget.counts(text)["clip"] == clip_token_count(text)
    if kind == "t5":
        assert budget.counts(text)["t5"] == estimated_tokens(text) >= clip_token_count(text)
        assert budget.describe() == f"{limit} T5 tokens (estimated)"
    else:
        assert budget.describe() == "75 CLIP tokens"


def test_the_pipelines_own_t5_tokenizer_counts_when_it_has_one() -> None:
    t5 = tiny_t5_tokenizer()
    flux_like = SimpleNamespace(tokenizer=object(), tokenizer_2=t5)  # Flux: CLIP, then T5
    budget = budget_for(profile_named("flux-dev"), flux_like)
    assert budget.limit.exact and budget.max_tokens == 511  # 512 read, one of them </s>
    assert budget.count("a red square") == 3  # three known words, </s> not counted
    assert budget.count("zebra") == 6  # "▁" and five letters
    assert budget.describe() == "511 T5 tokens"
    sd3_like = SimpleNamespace(tokenizer=None, tokenizer_2=None, tokenizer_3=t5)
    assert budget_for(profile_named("sd3"), sd3_like).count("a red square") == 3


def test_a_clip_tokenizer_where_t5_is_expected_is_not_trusted() -> None:
    class CLIPTokenizerFast:
        def __call__(self, text: str, **_: Any) -> dict[str, list[int]]:
            raise AssertionError("a CLIP tokenizer must not count T5 tokens")

    budget = budget_for(profile_named("flux-dev"), SimpleNamespace(tokenizer_2=CLIPTokenizerFast()))
    assert not budget.limit.exact
    assert budget.count("a red fox") == estimated_tokens("a red fox")


def test_budget_fits_is_the_limit_of_the_longest_encoder() -> None:
    sd1 = budget_for(profile_named("sd1"))
    long = ", ".join(f"phrase number {k}" for k in range(40))
    assert clip_token_count(long) > 75
    assert not sd1.fits(long)
    assert budget_for(profile_named("sd3")).fits(long)  # T5 reads it whole


def test_split_to_fit_packs_whole_phrases_in_order() -> None:
    phrases = [f"phrase number {k}" for k in range(40)]
    text = ", ".join(phrases)
    pieces = split_to_fit(text, clip_token_count, 20)
    assert len(pieces) > 1
    assert all(tokens == clip_token_count(piece) <= 20 for piece, tokens in pieces)
    assert [p for piece, _ in pieces for p in piece.split(", ")] == phrases


def test_split_to_fit_keeps_sentences_and_splits_an_overlong_phrase_between_words() -> None:
    text = "A red fox sits in a misty forest. " + "very " * 30 + "old oak trees."
    pieces = split_to_fit(text, clip_token_count, 12)
    assert pieces[0][0] == "A red fox sits in a misty forest."
    assert all(tokens <= 12 for _, tokens in pieces)
    assert " ".join(piece for piece, _ in pieces).split() == text.split()
    assert split_to_fit("a red fox", clip_token_count, 12) == [("a red fox", 3)]
    assert split_to_fit("  ", clip_token_count, 12) == []
