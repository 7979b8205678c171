from __future__ import annotations

from pathlib import Path

import pytest

from arpo.errors import InvalidOptionError
from arpo.tools.vocabulary import (
    CATEGORIES,
    Vocabulary,
    join_phrases,
    load_vocabulary,
    spelling_key,
    split_phrases,
)

SIZE_RANGES: dict[str, tuple[int, int]] = {
    "subject": (400, 700),
    "medium": (60, 120),
    "style": (100, 200),
    "lighting": (50, 100),
    "colour": (60, 120),
    "composition": (60, 120),
    "detail": (40, 80),
}


def test_packaged_vocabulary_has_every_category_in_order() -> None:
    vocab = load_vocabulary()
    assert tuple(vocab.categories) == CATEGORIES
    for category in CATEGORIES:
        low, high = SIZE_RANGES[category]
        assert low <= len(vocab.categories[category]) <= high, category
    assert len(vocab) >= 500


def test_packaged_phrases_are_clean_and_unique() -> None:
    vocab = load_vocabulary()
    seen: dict[str, str] = {}
    for category, phrases in vocab.categories.items():
        for phrase in phrases:
            assert phrase == phrase.strip() and phrase
            assert "," not in phrase and ";" not in phrase, phrase
            assert not phrase.startswith("#"), phrase
            assert phrase == phrase.lower(), phrase
            key = phrase.casefold()
            assert key not in seen, f"{phrase!r} in both {seen.get(key)} and {category}"
            seen[key] = category
    assert len(vocab.phrases) == len(seen) == len(vocab)


def test_packaged_vocabulary_is_cached() -> None:
    assert load_vocabulary() is load_vocabulary()


def test_category_of() -> None:
    vocab = load_vocabulary()
    assert vocab.category_of("a red fox") == "subject"
    assert vocab.category_of("Oil Painting") == "medium"
    assert vocab.category_of("  impressionism ") == "style"
    assert vocab.category_of("golden hour") == "lighting"
    assert vocab.category_of("monochrome") == "colour"
    assert vocab.category_of("rule of thirds") == "composition"
    assert vocab.category_of("highly detailed") == "detail"
    assert vocab.category_of("not a phrase in the vocabulary") is None


def test_from_mapping_normalises() -> None:
    vocab = Vocabulary.from_mapping({"a": [" x ", "", "y", "x"], "b": ["y", "Z", "  "]})
    assert vocab.categories["a"] == ("x", "y")
    assert vocab.categories["b"] == ("y", "Z")
    assert vocab.phrases == ("x", "y", "Z")
    assert len(vocab) == 3
    assert vocab.category_of("y") == "a"
    assert vocab.category_of("z") == "b"


def test_user_directory_loads_its_own_categories(tmp_path: Path) -> None:
    (tmp_path / "creature.txt").write_text(
        "# my creatures\ngriffin\n\n  basilisk  \ngriffin\n", encoding="utf-8"
    )
    (tmp_path / "style.txt").write_text("art nouveau\n#comment\nukiyo-e\n", encoding="utf-8")
    (tmp_path / "notes.md").write_text("ignored\n", encoding="utf-8")
    vocab = load_vocabulary(tmp_path)
    assert set(vocab.categories) == {"creature", "style"}
    assert vocab.categories["creature"] == ("griffin", "basilisk")
    assert vocab.categories["style"] == ("art nouveau", "ukiyo-e")
    assert vocab.category_of("Basilisk") == "creature"
    assert load_vocabulary(str(tmp_path)).categories == vocab.categories


def test_missing_directory_is_an_invalid_option(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(InvalidOptionError, match="nope") as excinfo:
        load_vocabulary(missing)
    assert str(missing) in str(excinfo.value)


def test_empty_directory_is_an_invalid_option(tmp_path: Path) -> None:
    (tmp_path / "readme.md").write_text("no phrases here\n", encoding="utf-8")
    with pytest.raises(InvalidOptionError) as excinfo:
        load_vocabulary(tmp_path)
    message = str(excinfo.value)
    assert str(tmp_path) in message
    assert ".txt" in message


def test_split_phrases() -> None:
    prompt = " a red fox,  oil painting ;golden hour\n\nhighly detailed,, "
    assert split_phrases(prompt) == ["a red fox", "oil painting", "golden hour", "highly detailed"]
    assert split_phrases("") == []


def test_split_join_round_trip() -> None:
    phrases = ["a red fox", "oil painting", "golden hour"]
    prompt = join_phrases(phrases)
    assert prompt == "a red fox, oil painting, golden hour"
    assert split_phrases(prompt) == phrases
    assert join_phrases([" a ", "", "  ", "b"]) == "a, b"
    assert join_phrases(split_phrases("x;y\nz")) == "x, y, z"


def test_vocabulary_equality_and_hash() -> None:
    a = Vocabulary.from_mapping({"x": ["one", "two"]})
    b = Vocabulary.from_mapping({"x": ["one", " two ", "one"]})
    assert a == b
    assert hash(a) == hash(b)
    assert a != Vocabulary.from_mapping({"y": ["one", "two"]})


SHAPES = Vocabulary.from_mapping(
    {
        "subject": ["a red star", "an orange star", "a red heart", "a blue heart", "red"],
        "background": ["on a red background", "on a blue background"],
        "mood": ["calm", "loud"],
    }
)


def test_neighbours_differ_in_one_word_within_a_category() -> None:
    # "an" reads as "a", so changing the colour is one word even where the article changes
    assert set(SHAPES.neighbours("a red star")) == {"an orange star", "a red heart"}
    assert SHAPES.neighbours("on a red background") == ("on a blue background",)
    # one-word phrases would neighbour their whole category, so they have none
    assert SHAPES.neighbours("calm") == ()
    assert SHAPES.neighbours("not in the vocabulary at all") == ()


def test_text_the_vocabulary_lacks_gets_one_word_swaps_it_allows() -> None:
    """A captioner's phrase: each word swapped for the words the vocabulary uses in its place
    (red/orange/blue from the stars, hearts and backgrounds; star/heart), articles fixed."""
    swaps = set(SHAPES.neighbours("a big red star in the corner"))
    assert swaps == {
        "a big orange star in the corner",
        "a big blue star in the corner",
        "a big red heart in the corner",
    }
    assert "an orange star" in SHAPES.word_swaps("a red star")  # "a" becomes "an"
    assert SHAPES.word_swaps("calm and quiet") == ()  # no word of it has a substitute


def test_one_per_prompt_categories_come_from_a_file_marker(tmp_path: Path) -> None:
    (tmp_path / "background.txt").write_text("# arpo: one per prompt\non a red background\n")
    (tmp_path / "subject.txt").write_text("# a plain comment\na red star\n")
    vocab = load_vocabulary(tmp_path)
    assert vocab.one_per_prompt == frozenset({"background"})
    assert vocab.categories["background"] == ("on a red background",)
    assert load_vocabulary().one_per_prompt == frozenset()


@pytest.mark.parametrize(
    ("british", "american"),
    [
        ("watercolour painting", "watercolor painting"),
        ("Colourful", "colorful"),
        ("pastel colours", "pastel colors"),
        ("grey", "gray"),
        ("centred  composition", "centered composition"),
        ("stylised", "stylized"),
        ("harbour at night", "harbor at night"),
    ],
)
def test_two_spellings_of_a_phrase_have_one_key(british: str, american: str) -> None:
    assert spelling_key(british) == spelling_key(american)


@pytest.mark.parametrize("word", ["hour", "four", "your", "tour", "contour", "red"])
def test_words_that_only_look_british_keep_their_key(word: str) -> None:
    assert spelling_key(word) == word


def test_a_phrase_is_found_under_either_spelling_and_given_back_in_the_vocabularys() -> None:
    vocab = Vocabulary.from_mapping({"style": ["watercolour"], "colour": ["grey tones"]})
    assert vocab.category_of("Watercolor") == "style"
    assert vocab.spelled("watercolor") == "watercolour"
    assert vocab.category_of("gray tones") == "colour"
    assert vocab.spelled("an oil painting") is None
