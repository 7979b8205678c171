"""Phrase vocabulary for CLIP interrogation and the offline prompt proposer.

The packaged vocabulary is one ``<category>.txt`` file per category in this folder: one phrase
per line, ``#`` starts a comment line, blank lines are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
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


@dataclass(frozen=True)
class Vocabulary:
    """Phrases grouped by category; category order is the mapping's insertion order."""

    categories: Mapping[str, tuple[str, ...]]
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
    def from_mapping(cls, mapping: Mapping[str, Iterable[str]]) -> Vocabulary:
        return cls({category: _normalise(phrases) for category, phrases in mapping.items()})

    @property
    def phrases(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p for phrases in self.categories.values() for p in phrases))

    def category_of(self, phrase: str) -> str | None:
        return self._index.get(phrase.strip().casefold())

    def __len__(self) -> int:
        return len(self.phrases)

    def __hash__(self) -> int:
        return hash(tuple(self.categories.items()))


def _normalise(phrases: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(p.strip() for p in phrases if p.strip()))


def _read_phrases(text: str) -> tuple[str, ...]:
    return _normalise(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def _read_files(paths: Iterable[Path | Traversable]) -> Vocabulary:
    by_stem = {Path(p.name).stem: p for p in paths}
    # Known categories first, in their canonical order; any others alphabetically after.
    order = [c for c in CATEGORIES if c in by_stem] + sorted(set(by_stem) - set(CATEGORIES))
    return Vocabulary(
        {stem: _read_phrases(by_stem[stem].read_text(encoding="utf-8")) for stem in order}
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
