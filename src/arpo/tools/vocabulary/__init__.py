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


@dataclass(frozen=True)
class Vocabulary:
    """Phrases grouped by category; category order is the mapping's insertion order."""

    categories: Mapping[str, tuple[str, ...]]
    one_per_prompt: frozenset[str] = frozenset()
    _index: Mapping[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        categories = MappingProxyType({k: tuple(v) for k, v in self.categories.items()})
        object.__setattr__(self, "categories", categories)
        # First category wins when a phrase appears in several, matching `phrases` order.
        index: dict[str, str] = {}
        for category, phrases in categories.items():
            for phrase in phrases:
                index.setdefault(phrase.casefold(), category)
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
        return self._index.get(phrase.strip().casefold())

    def neighbours(self, phrase: str) -> tuple[str, ...]:
        """Phrases of ``phrase``'s category that differ from it in exactly one word and share
        at least one ("a red star" -> "a blue star", "a red heart"): the fine moves a search
        needs once a phrase is nearly right, which the category's top phrases by similarity
        often leave out. One-word phrases have none (every other one would qualify)."""
        found: dict[str, None] = {}
        words = _words(phrase)
        category = self.category_of(phrase)
        for i in range(len(words)):
            key = (category, i, words[:i] + words[i + 1 :])
            for other in self._one_word_index.get(key, ()):
                if other.casefold() != phrase.strip().casefold():
                    found.setdefault(other)
        return tuple(found)

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
