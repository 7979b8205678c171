"""CLIP interrogation and the offline proposer, over a synthetic scorer and the tiny CLIP."""

from __future__ import annotations

import random

from arpo.tools.phrases import Interrogator, OfflineProposer, rank_phrases
from arpo.tools.vocabulary import Vocabulary, load_vocabulary, split_phrases

REFERENCE = object()  # the synthetic scorer checks that callers pass the reference through

WEIGHTS = {
    "a cat": 0.5,
    "a dog": 0.3,
    "a house": 0.1,
    "oil painting": 0.2,
    "pixel art": 0.15,
    "watercolor": -0.05,
    "dim light": -0.2,
    "harsh light": -0.3,
    "red tones": 0.05,
    "blue tones": 0.04,
}


class WordScorer:
    """Duck-typed scorer: a text scores the sum of its known phrases' weights."""

    def __init__(self, weights: dict[str, float]) -> None:
        self.weights = weights
        self.calls: list[list[str]] = []

    def text_similarity(self, texts, reference):
        assert reference is REFERENCE
        self.calls.append(list(texts))
        return [sum(self.weights.get(p, 0.0) for p in split_phrases(t)) for t in texts]


VOCABULARY = Vocabulary.from_mapping(
    {
        "subject": ["a house", "a dog", "a cat"],
        "medium": ["watercolor", "oil painting", "pixel art"],
        "lighting": ["dim light", "harsh light"],
        "colour": ["blue tones", "red tones"],
    }
)


def test_rank_phrases_is_best_first_with_categories():
    ranked = rank_phrases(WordScorer(WEIGHTS), VOCABULARY, REFERENCE)
    assert [r.phrase for r in ranked[:3]] == ["a cat", "a dog", "oil painting"]
    assert [r.score for r in ranked] == sorted((r.score for r in ranked), reverse=True)
    assert {r.phrase: r.category for r in ranked}["pixel art"] == "medium"
    assert len(ranked) == len(VOCABULARY)


def test_caption_picks_the_best_subject_then_phrases_that_help():
    scorer = WordScorer(WEIGHTS)
    caption = Interrogator(scorer, VOCABULARY).caption(REFERENCE)
    # the best subject; the best medium; no lighting (every option lowers the score); best colour
    assert caption == "a cat, oil painting, red tones"


def test_caption_only_tries_the_top_phrases_per_category():
    weights = {**WEIGHTS, "watercolor": 0.01, "oil painting": -0.5, "pixel art": -0.4}
    caption = Interrogator(WordScorer(weights), VOCABULARY, per_category=1).caption(REFERENCE)
    # the medium with the best single score (watercolor) is the only one tried; categories are
    # visited in the order of their best phrase's score (red tones outranks watercolor)
    assert caption == "a cat, red tones, watercolor"


def test_caption_of_an_empty_vocabulary_is_empty():
    empty = Vocabulary.from_mapping({})
    assert Interrogator(WordScorer(WEIGHTS), empty).caption(REFERENCE) == ""


def test_caption_without_subject_category_starts_with_the_best_category():
    vocabulary = Vocabulary.from_mapping({"medium": ["oil painting", "pixel art"], "x": ["a cat"]})
    caption = Interrogator(WordScorer(WEIGHTS), vocabulary).caption(REFERENCE)
    assert caption == "a cat, oil painting"


def test_complete_does_not_repeat_what_the_caption_already_says():
    # the scorer rewards a repeated phrase (as a real CLIP may) and a second medium; the
    # caption names its medium, so completion adds neither
    completed = Interrogator(WordScorer(WEIGHTS), VOCABULARY).complete(
        "a dog, Oil Painting", REFERENCE
    )
    assert completed == "a dog, Oil Painting, red tones"


def test_complete_adds_the_best_new_phrase_of_each_category():
    completed = Interrogator(WordScorer(WEIGHTS), VOCABULARY).complete("a dog", REFERENCE)
    assert completed == "a dog, oil painting, red tones"


def test_caption_with_the_tiny_clip_model(tiny_models):
    scorer = tiny_models.scorer
    vocabulary = load_vocabulary()
    reference = scorer.encode_images([_noise()])[0]
    caption = Interrogator(scorer, vocabulary).caption(reference)
    phrases = split_phrases(caption)
    assert phrases[0] in vocabulary.categories["subject"]
    assert len(set(phrases)) == len(phrases)
    subject_scores = scorer.text_similarity(vocabulary.categories["subject"], reference)
    assert scorer.text_similarity([caption], reference)[0] >= max(subject_scores) - 1e-6
    assert phrases[0] == vocabulary.categories["subject"][subject_scores.index(max(subject_scores))]


def _noise():
    import numpy as np
    from PIL import Image

    return Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8))


# --------------------------------------------------------------------------- offline proposer


def is_one_edit(prompt: str, candidate: str, vocabulary: Vocabulary) -> bool:
    """True when candidate adds, replaces or drops exactly one phrase of prompt."""
    before, after = split_phrases(prompt), split_phrases(candidate)
    if len(after) == len(before) + 1:
        return after[:-1] == before and after[-1] in vocabulary.phrases
    if len(after) == len(before) - 1:
        return any(before[:i] + before[i + 1 :] == after for i in range(len(before)))
    if len(after) == len(before):
        changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
        return len(changed) == 1 and after[changed[0]] in vocabulary.phrases
    return False


BIG = Vocabulary.from_mapping(
    {
        # one word each, so no two phrases are one-word neighbours (always proposed)
        "subject": [f"subject-{i}" for i in range(12)],
        "style": [f"style-{i}" for i in range(12)],
        "lighting": [f"light-{i}" for i in range(12)],
    }
)
BIG_WEIGHTS = {p: ((int(p.split("-")[-1]) * 7 + len(p)) % 13) / 13 for p in BIG.phrases}


def test_propose_returns_distinct_new_candidates():
    proposer = OfflineProposer(WordScorer(BIG_WEIGHTS), BIG)
    prompt = "subject-1, style-2, light-3"
    candidates = proposer.propose(prompt, REFERENCE, 5, random.Random(0))
    assert len(candidates) == 5
    assert len(set(candidates)) == 5
    assert prompt not in candidates
    assert all(c.strip() for c in candidates)


def test_propose_is_deterministic_for_a_seeded_random():
    # a budget smaller than the edit space makes the proposer sample which edits to score
    proposer = OfflineProposer(WordScorer(BIG_WEIGHTS), BIG, max_edits=6)
    prompt = "subject-1, style-2"
    first = proposer.propose(prompt, REFERENCE, 6, random.Random(42))
    again = proposer.propose(prompt, REFERENCE, 6, random.Random(42))
    other = proposer.propose(prompt, REFERENCE, 6, random.Random(43))
    assert first == again
    assert first != other


def test_propose_returns_the_best_scoring_single_edits():
    scorer = WordScorer(BIG_WEIGHTS)
    proposer = OfflineProposer(scorer, BIG)
    prompt = "subject-1, style-2"
    candidates = proposer.propose(prompt, REFERENCE, 3, random.Random(0))
    scores = scorer.text_similarity(candidates, REFERENCE)
    assert scores == sorted(scores, reverse=True)
    every_edit = proposer.propose(prompt, REFERENCE, 10_000, random.Random(0))
    assert max(scorer.text_similarity(every_edit, REFERENCE)) == scores[0]


def test_every_candidate_is_a_single_edit():
    proposer = OfflineProposer(WordScorer(BIG_WEIGHTS), BIG)
    prompt = "subject-1, style-2, light-3, style-5"
    not_single = []
    for seed in range(12):
        candidates = proposer.propose(prompt, REFERENCE, 8, random.Random(seed))
        assert candidates
        not_single += [c for c in candidates if not is_one_edit(prompt, c, BIG)]
    assert not_single == []


def test_new_phrases_come_from_each_categorys_best():
    proposer = OfflineProposer(WordScorer(BIG_WEIGHTS), BIG, per_slot=3, explore=0)
    ranked = rank_phrases(WordScorer(BIG_WEIGHTS), BIG, REFERENCE)
    prompt = ranked[0].phrase
    allowed = {
        phrase
        for category in BIG.categories
        for phrase in [r.phrase for r in ranked if r.category == category and r.phrase != prompt][
            :3
        ]
    }
    candidates = proposer.propose(prompt, REFERENCE, 100, random.Random(0))
    assert candidates
    for candidate in candidates:
        added = set(split_phrases(candidate)) - {prompt}
        assert added <= allowed


def test_propose_from_an_empty_prompt_adds_phrases():
    proposer = OfflineProposer(WordScorer(BIG_WEIGHTS), BIG)
    candidates = proposer.propose("", REFERENCE, 3, random.Random(0))
    assert len(candidates) == 3
    assert all(len(split_phrases(c)) == 1 for c in candidates)


def test_propose_with_nothing_to_do_returns_nothing():
    tiny = Vocabulary.from_mapping({"subject": ["a cat"]})
    proposer = OfflineProposer(WordScorer(WEIGHTS), tiny)
    assert proposer.propose("a cat", REFERENCE, 4, random.Random(0)) == []


def test_candidates_spread_over_the_prompt_before_repeating_a_place():
    from arpo.tools.phrases import _diverse

    ranked = [("at 0", "a"), ("at 0", "b"), ("at 1", "c"), ("add style", "d"), ("at 0", "e")]
    assert _diverse(ranked, 3) == ["a", "c", "d"]  # the best edit of each place, best first
    assert _diverse(ranked, 4) == ["a", "b", "c", "d"]  # then each place's second best
    ranked = [("at 0", "a"), ("at 0", "b"), ("at 0", "e"), ("at 1", "c"), ("at 1", "f")]
    assert _diverse(ranked, 4) == ["a", "b", "c", "f"]  # "e" outscores "f", but its place had two


def test_one_word_neighbours_are_proposed_even_when_ranked_low():
    vocab = Vocabulary.from_mapping(
        {"subject": ["a red star", "a blue star", *[f"thing {i} here" for i in range(40)]]}
    )
    weights = {f"thing {i} here": 0.5 for i in range(40)} | {"a blue star": 0.1}
    proposer = OfflineProposer(WordScorer(weights), vocab, per_slot=2, explore=0, max_edits=3)
    candidates = proposer.propose("a red star", REFERENCE, 50, random.Random(0))
    assert "a blue star" in candidates


def test_a_captioned_phrase_is_fixed_one_word_at_a_time():
    """A captioner writes "a red striped star in the top left", which no vocabulary holds:
    replacing the whole phrase by a vocabulary phrase loses what the vocabulary cannot say
    (here the position), but a one-word swap keeps it."""
    vocab = Vocabulary.from_mapping(
        {
            "subject": ["a red star", "a blue star", "a red heart"],
            "position": ["in the top left", "in the top right"],
        }
    )
    weights = {"a blue striped star in the top left": 1.0}
    proposer = OfflineProposer(WordScorer(weights), vocab)
    candidates = proposer.propose(
        "a red striped star in the top left", REFERENCE, 4, random.Random(0)
    )
    assert candidates[0] == "a blue striped star in the top left"
    assert "a red striped heart in the top left" in candidates


def test_no_edit_repeats_a_phrase_the_prompt_has():
    # "a red star" is a one-word swap of "a red heart" and is already in the prompt; the
    # scorer would reward saying it twice
    vocab = Vocabulary.from_mapping(
        {"subject": ["a red star", "a red heart"], "medium": ["pixel art", "oil painting"]}
    )
    weights = {"a red star": 0.5, "pixel art": 0.4, "a red heart": 0.1}
    proposer = OfflineProposer(WordScorer(weights), vocab)
    candidates = proposer.propose(
        "a red star, a red heart, pixel art", REFERENCE, 20, random.Random(0)
    )
    assert candidates
    for candidate in candidates:
        phrases = [p.casefold() for p in split_phrases(candidate)]
        assert len(phrases) == len(set(phrases)), candidate


def test_one_per_prompt_categories_are_replaced_not_added():
    vocab = Vocabulary.from_mapping(
        {"subject": ["a cat", "a dog"], "background": ["red wall", "blue wall", "green wall"]},
        one_per_prompt=["background"],
    )
    proposer = OfflineProposer(WordScorer({}), vocab)
    candidates = proposer.propose("a cat, red wall", REFERENCE, 100, random.Random(0))
    assert "a cat, blue wall" in candidates
    assert all(
        sum(vocab.category_of(p) == "background" for p in split_phrases(c)) <= 1 for c in candidates
    )
    assert "a cat, red wall, a dog" in candidates  # subjects may still be added


def test_only_edits_within_the_token_limit_are_scored_and_proposed():
    from arpo.tools.families import profile_named
    from arpo.tools.tokens import budget_for, clip_token_count

    long_phrases = [f"a very long phrase about thing number {k}" for k in range(9)]
    vocab = Vocabulary.from_mapping(
        {"subject": ["a cat", "a dog"], "detail": ["grain", *long_phrases]}
    )
    scorer = WordScorer({phrase: 1.0 for phrase in long_phrases})  # the long ones score best
    budget = budget_for(profile_named("sd1"))
    prompt = ", ".join(["a cat", *long_phrases[:8]])  # 74 tokens: near the 75 limit
    assert budget.fits(prompt) and not budget.fits(f"{prompt}, {long_phrases[8]}")
    proposer = OfflineProposer(scorer, vocab)
    unlimited = proposer.propose(prompt, REFERENCE, 100, random.Random(0))
    assert any(not budget.fits(c) for c in unlimited)  # without a limit it adds the sixth
    scorer.calls.clear()
    limited = proposer.propose(prompt, REFERENCE, 100, random.Random(0), fits=budget.fits)
    assert limited and all(clip_token_count(c) <= 75 for c in limited)
    assert all(budget.fits(text) for call in scorer.calls for text in call)  # nothing else scored
    assert prompt.replace("a cat", "a dog") in limited  # an edit of the same length still fits
