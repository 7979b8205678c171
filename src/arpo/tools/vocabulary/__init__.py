"""Phrase vocabulary for CLIP interrogation and the offline prompt proposer.

The packaged vocabulary is one ``<category>.txt`` file per category in this folder: one phrase
per line, ``#`` starts a comment line, blank lines are ignored. A file with the line
``# arpo: one per prompt`` holds a category a prompt states once (a background, a position):
the offline proposer replaces its phrase instead of adding a second.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from types import MappingProxyType

from arpo.errors import InvalidOptionError

__all__ = [
    "CATEGORIES",
    "Vocabulary",
    "join_phrases",
    "load_vocabulary",
    "spelling_key",
    "split_phrases",
]

CATEGORIES: tuple[str, ...] = (
    "subject",
    "medium",
    "style",
    "lighting",
    "colour",
    "composition",
    "detail",
)

_PHRASE_SEPARATORS = re.compile(r"[,;\n\r]+")
ONE_PER_PROMPT = "# arpo: one per prompt"

# British and American spellings of the words prompts use: "colour"/"color", "watercolour",
# "grey"/"gray", "centre"/"center", "stylised"/"stylized" (and their -s, -ed, -ful... forms)
_OUR = re.compile(
    r"^(col|watercol|harb|arm|vap|flav|hon|neighb|hum|glam|splend|rig|behavi|od|lab|sav|"
    r"parl|fav|val|arb|clam|rum|tum|vig)our(\w*)$"
)
_RE = re.compile(r"^(cent|theat|met|fib|somb|lust|spect|sab|calib|meag|lit)re(s|d)?$")
_ISE = re.compile(r"^(styl|real|romantic|ideal|minimal|vector|colo|modern|stabil|optim)is(\w*)$")
_GREY = re.compile(r"^grey(\w*)$")
_WORD = re.compile(r"\w+|[^\w\s]")


def _one_spelling(word: str) -> str:
    word = _OUR.sub(r"\1or\2", word)
    word = _RE.sub(lambda m: f"{m[1]}er{'ed' if m[2] == 'd' else (m[2] or '')}", word)
    word = _ISE.sub(r"\1iz\2", word)
    return _GREY.sub(r"gray\1", word)


def spelling_key(text: str) -> str:
    """``text`` lower-cased, its words in one spelling, spaces normalised: two spellings of a
    phrase ("watercolour painting", "Watercolor  painting") have one key."""
    return " ".join(_one_spelling(word) for word in _WORD.findall(text.casefold()))


@dataclass(frozen=True)
class Vocabulary:
    """Phrases grouped by category; category order is the mapping's insertion order."""

    categories: Mapping[str, tuple[str, ...]]
    one_per_prompt: frozenset[str] = frozenset()
    # spelling key -> (category, the phrase as the vocabulary writes it)
    _index: Mapping[str, tuple[str, str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        categories = MappingProxyType({k: tuple(v) for k, v in self.categories.items()})
        object.__setattr__(self, "categories", categories)
        # First category wins when a phrase appears in several, matching `phrases` order.
        index: dict[str, tuple[str, str]] = {}
        for category, phrases in categories.items():
            for phrase in phrases:
                index.setdefault(spelling_key(phrase), (category, phrase))
        object.__setattr__(self, "_index", MappingProxyType(index))

    @classmethod
    def from_mapping(
        cls, mapping: Mapping[str, Iterable[str]], one_per_prompt: Iterable[str] = ()
    ) -> Vocabulary:
        return cls(
            {category: _normalise(phrases) for category, phrases in mapping.items()},
            frozenset(one_per_prompt),
        )

    @property
    def phrases(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p for phrases in self.categories.values() for p in phrases))

    def category_of(self, phrase: str) -> str | None:
        """The category of ``phrase``, whatever its case, spacing or spelling (British or
        American: "watercolor" finds "watercolour"); None when the vocabulary lacks it."""
        found = self._index.get(spelling_key(phrase))
        return found[0] if found else None

    def spelled(self, phrase: str) -> str | None:
        """``phrase`` as the vocabulary writes it ("watercolor" -> "watercolour"), or None."""
        found = self._index.get(spelling_key(phrase))
        return found[1] if found else None

    def neighbours(self, phrase: str) -> tuple[str, ...]:
        """Phrases of ``phrase``'s category that differ from it in exactly one word and share
        at least one ("a red star" -> "a blue star", "a red heart"): the fine moves a search
        needs once a phrase is nearly right, which the category's top phrases by similarity
        often leave out. One-word phrases have none (every other one would qualify). A phrase
        the vocabulary does not hold (a captioner's) gets its :meth:`word_swaps` instead."""
        found: dict[str, None] = {}
        words = _words(phrase)
        category = self.category_of(phrase)
        if category is None:
            return self.word_swaps(phrase)
        for i in range(len(words)):
            key = (category, i, words[:i] + words[i + 1 :])
            for other in self._one_word_index.get(key, ()):
                if other.casefold() != phrase.strip().casefold():
                    found.setdefault(other)
        return tuple(found)

    def word_swaps(self, phrase: str) -> tuple[str, ...]:
        """``phrase`` with one word swapped for a word the vocabulary uses in its place, where
        swapping the two turns one of its phrases into another of the same category ("red"
        and "blue" in "a red star" and "a blue star"; "left" and "right" in "in the top
        left"): fine moves for any text, such as a captioner's "a large red striped star in
        the top left", whose phrase no vocabulary holds."""
        words = _words(phrase)
        own = " ".join(words)
        found: dict[str, None] = {}
        for i, word in enumerate(words):
            for other in self._substitutes.get(word, ()):
                text = _spoken([*words[:i], other, *words[i + 1 :]])
                if text != own:
                    found.setdefault(text)
        return tuple(found)

    @cached_property
    def _substitutes(self) -> dict[str, tuple[str, ...]]:
        """word -> the words that replace it in some one-word edit of a vocabulary phrase."""
        found: dict[str, dict[str, None]] = {}
        for (_, position, _), phrases in self._one_word_index.items():
            words = sorted({_words(phrase)[position] for phrase in phrases})
            for word in words if len(words) > 1 else ():
                found.setdefault(word, {}).update((w, None) for w in words if w != word)
        return {word: tuple(others) for word, others in found.items()}

    @cached_property
    def _one_word_index(self) -> dict[tuple[str | None, int, tuple[str, ...]], list[str]]:
        """(category, word position, the other words) -> phrases: one-word edits, indexed."""
        index: dict[tuple[str | None, int, tuple[str, ...]], list[str]] = {}
        for category, phrases in self.categories.items():
            for phrase in phrases:
                words = _words(phrase)
                for i in range(len(words) if len(words) > 1 else 0):
                    index.setdefault((category, i, words[:i] + words[i + 1 :]), []).append(phrase)
        return index

    def __len__(self) -> int:
        return len(self.phrases)

    def __hash__(self) -> int:
        return hash((tuple(self.categories.items()), self.one_per_prompt))


def _spoken(words: Iterable[str]) -> str:
    """Words joined back into a phrase, "a" written "an" before a vowel ("an orange star")."""
    listed = list(words)
    fixed = [
        "an" if w == "a" and i + 1 < len(listed) and listed[i + 1][:1] in "aeiou" else w
        for i, w in enumerate(listed)
    ]
    return " ".join(fixed)


def _words(phrase: str) -> tuple[str, ...]:
    """Lower-cased words, with "an" read as "a" so "a red star" and "an orange star" are one
    word apart."""
    return tuple("a" if w == "an" else w for w in phrase.casefold().split())


def _normalise(phrases: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(p.strip() for p in phrases if p.strip()))


def _read_phrases(text: str) -> tuple[str, ...]:
    return _normalise(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def _read_files(paths: Iterable[Path | Traversable]) -> Vocabulary:
    by_stem = {Path(p.name).stem: p for p in paths}
    # Known categories first, in their canonical order; any others alphabetically after.
    order = [c for c in CATEGORIES if c in by_stem] + sorted(set(by_stem) - set(CATEGORIES))
    texts = {stem: by_stem[stem].read_text(encoding="utf-8") for stem in order}
    return Vocabulary(
        {stem: _read_phrases(text) for stem, text in texts.items()},
        frozenset(stem for stem, text in texts.items() if ONE_PER_PROMPT in text.splitlines()),
    )


@lru_cache(maxsize=1)
def _packaged_vocabulary() -> Vocabulary:
    root = files(__name__)
    return _read_files(p for p in root.iterdir() if p.is_file() and p.name.endswith(".txt"))


def load_vocabulary(directory: str | Path | None = None) -> Vocabulary:
    """Load the packaged vocabulary, or every ``*.txt`` in ``directory`` (category = file stem)."""
    if directory is None:
        return _packaged_vocabulary()
    path = Path(directory).expanduser()
    if not path.is_dir():
        raise InvalidOptionError(
            f"Vocabulary folder {path} does not exist or is not a folder. Point it at a folder "
            "holding one <category>.txt file per category (one phrase per line)."
        )
    txt_files = sorted(p for p in path.glob("*.txt") if p.is_file())
    if not txt_files:
        raise InvalidOptionError(
            f"Vocabulary folder {path} has no .txt files. It must hold one <category>.txt file "
            "per category (for example subject.txt, style.txt), one phrase per line."
        )
    return _read_files(txt_files)


def split_phrases(prompt: str) -> list[str]:
    return [p.strip() for p in _PHRASE_SEPARATORS.split(prompt) if p.strip()]


def join_phrases(phrases: Iterable[str]) -> str:
    return ", ".join(p.strip() for p in phrases if p.strip())
