"""Read the demo world's words out of any text prompt.

The parser is forgiving on purpose: it looks for the world's words (and their synonyms and
plurals) wherever they appear, ignores every other word, and builds objects around shape words.
Within a clause (a comma/semicolon/colon-separated phrase), the count, size, colour and fill words
just before a shape describe it; such words after the last shape of a clause, or before an "and"
that precedes the next shape, describe the shape before them ("a star with stripes and a ...").
Position phrases attach to the nearest object (same clause first). Attribute words in a clause
that has no shape ("red", "striped") go to the nearest object that lacks that attribute; if the
prompt names no shape at all they describe one unnamed object. Unstated attributes are ``None``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

from arpo.demo.world import COUNTS, SYNONYMS, Background, canonical_kinds, plural

__all__ = ["PartialObject", "PartialScene", "parse_prompt"]

_TOKEN = re.compile(r"[a-z0-9]+|&|[,;:.!?()\[\]{}|\n]")
_ATTRIBUTES = ("count", "size", "colour", "fill")
_MAX_PHRASE = 4


@dataclass(frozen=True)
class PartialObject:
    """One object group as a prompt states it; ``shape`` is None for "a red shape"."""

    shape: str | None = None
    colour: str | None = None
    fill: str | None = None
    size: str | None = None
    position: str | None = None
    count: int | None = None
    plural: bool = False


@dataclass(frozen=True)
class PartialScene:
    """What a prompt says about a scene; anything unstated is None (or no objects)."""

    objects: tuple[PartialObject, ...] = ()
    background: Background | None = None
    style: str | None = None


class _Tok(NamedTuple):
    kind: str  # shape, generic, colour, fill, size, count, position, style, word, sep, gap
    value: str
    plural: bool = False


@dataclass
class _Obj:
    shape_index: int
    start: int
    clause: int
    shape: str | None
    plural: bool
    attrs: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- lexicon


@lru_cache(maxsize=1)
def _lexicon() -> dict[tuple[str, ...], _Tok]:
    kinds = canonical_kinds()
    lexicon: dict[tuple[str, ...], _Tok] = {}

    def add(surface: str, canonical: str, is_plural: bool = False) -> None:
        kind = kinds.get(canonical, "word")
        lexicon.setdefault(tuple(_TOKEN.findall(surface.lower())), _Tok(kind, canonical, is_plural))

    for word in kinds:
        add(word, word)
    for surface, canonical in SYNONYMS.items():
        add(surface, canonical)
    for surface, canonical in [*((w, w) for w in kinds), *SYNONYMS.items()]:
        if kinds.get(canonical) in ("shape", "generic"):
            add(plural(surface), canonical, True)
    return lexicon


def _tokenize(prompt: str) -> list[_Tok]:
    words = _TOKEN.findall(prompt.lower())
    lexicon = _lexicon()
    toks: list[_Tok] = []
    i = 0
    while i < len(words):
        for n in range(min(_MAX_PHRASE, len(words) - i), 0, -1):
            tok = lexicon.get(tuple(words[i : i + n]))
            if tok is not None:
                toks.append(tok)
                i += n
                break
        else:
            word = words[i]
            toks.append(_Tok("word" if word[0].isalnum() else "sep", word))
            i += 1
    return toks


# --------------------------------------------------------------------------- background

# A pattern is a list of (test, optional, captured); tests: "C" any colour, "A" an article
# (a count of one), or a set of accepted plain words / separators.
_Element = tuple[str | frozenset[str], bool, bool]


def _el(test: str | set[str], optional: bool = False, captured: bool = False) -> _Element:
    return (test if isinstance(test, str) else frozenset(test), optional, captured)


_BACKGROUND_WORD = _el({"background"})
_GRADIENT_PATTERNS: tuple[list[_Element], ...] = (
    [_el("A", True), _el("C", captured=True), _el({"to", "and"}), _el("C", captured=True),
     _el({"gradient"}), _el({"background"}, True)],
    [_el("A", True), _el({"gradient"}), _el({"background"}, True), _el({"from", "of"}, True),
     _el("C", captured=True), _el({"to", "and"}), _el("C", captured=True),
     _el({"background"}, True)],
)  # fmt: skip
_PLAIN_PATTERNS: tuple[list[_Element], ...] = (
    [_el("A", True), _el("C", captured=True), _el({"coloured", "colour"}, True), _BACKGROUND_WORD],
    [
        _BACKGROUND_WORD,
        _el({":"}, True),
        _el({"colour"}, True),
        _el({"is", "of"}, True),
        _el("C", captured=True),
    ],
)


def _accepts(test: str | frozenset[str], tok: _Tok) -> bool:
    if test == "C":
        return tok.kind == "colour"
    if test == "A":
        return tok.kind == "count" and COUNTS.get(tok.value) == 1
    return tok.kind in ("word", "sep") and tok.value in test


def _match(
    toks: list[_Tok], i: int, pattern: list[_Element], captures: tuple[str, ...] = ()
) -> tuple[int, tuple[str, ...]] | None:
    """Match ``pattern`` at ``toks[i]``: (end index, captured values) or None."""
    if not pattern:
        return i, captures
    test, optional, captured = pattern[0]
    if i < len(toks) and _accepts(test, toks[i]):
        got = (*captures, toks[i].value) if captured else captures
        found = _match(toks, i + 1, pattern[1:], got)
        if found is not None:
            return found
    return _match(toks, i, pattern[1:], captures) if optional else None


def _find_backgrounds(toks: list[_Tok]) -> list[tuple[int, int, Background]]:
    """Every background phrase as (start, end, background), without overlaps."""
    found: list[tuple[int, int, Background]] = []
    taken: set[int] = set()
    for patterns in (_GRADIENT_PATTERNS, _PLAIN_PATTERNS):
        for pattern in patterns:
            i = 0
            while i < len(toks):
                match = _match(toks, i, pattern)
                if match is None or taken.intersection(range(i, match[0])):
                    i += 1
                    continue
                end, colours = match
                found.append((i, end, Background(*colours)))
                taken.update(range(i, end))
                i = end
    return sorted(found, key=lambda item: item[0])


# --------------------------------------------------------------------------- objects


def _clauses(toks: list[_Tok]) -> list[int]:
    clause, ids = 0, []
    for tok in toks:
        if tok.kind == "sep":
            clause += 1
        ids.append(clause)
    return ids


def _split_and(toks: list[_Tok], lo: int, hi: int) -> int:
    """Index in [lo, hi] where the words before a shape at ``hi`` start describing it."""
    for j in range(hi - 1, lo - 1, -1):
        if toks[j].kind == "word" and toks[j].value == "and":
            return j + 1
    return lo


def _build_objects(toks: list[_Tok], clause_of: list[int]) -> list[_Obj]:
    objects: list[_Obj] = []
    for i, tok in enumerate(toks):
        if tok.kind == "generic" and i and toks[i - 1].kind == "shape":
            continue  # "a star shape"
        if tok.kind in ("shape", "generic"):
            shape = tok.value if tok.kind == "shape" else None
            objects.append(_Obj(i, i, clause_of[i], shape, tok.plural))
    for k, obj in enumerate(objects):
        prev = objects[k - 1] if k and objects[k - 1].clause == obj.clause else None
        lo = prev.shape_index + 1 if prev else _clause_start(clause_of, obj.shape_index)
        start = _split_and(toks, lo, obj.shape_index) if prev else lo
        _take_attributes(obj, toks, range(obj.shape_index - 1, start - 1, -1), counts=True)
        described = [j for j in range(start, obj.shape_index) if toks[j].kind in _ATTRIBUTES]
        obj.start = described[0] if described else obj.shape_index
        if prev:
            _take_attributes(prev, toks, range(lo, start), counts=False)
    for k, obj in enumerate(objects):
        nxt = objects[k + 1] if k + 1 < len(objects) else None
        if nxt is None or nxt.clause != obj.clause:
            end = _clause_end(clause_of, obj.shape_index)
            _take_attributes(obj, toks, range(obj.shape_index + 1, end), counts=False)
    return objects


def _clause_start(clause_of: list[int], i: int) -> int:
    while i > 0 and clause_of[i - 1] == clause_of[i]:
        i -= 1
    return i


def _clause_end(clause_of: list[int], i: int) -> int:
    while i + 1 < len(clause_of) and clause_of[i + 1] == clause_of[i]:
        i += 1
    return i + 1


def _take_attributes(obj: _Obj, toks: list[_Tok], indices: range, *, counts: bool) -> None:
    """Give ``obj`` the first attribute of each kind met along ``indices`` it lacks."""
    for j in indices:
        tok = toks[j]
        wanted = tok.kind in _ATTRIBUTES and (counts or tok.kind != "count")
        if wanted and tok.kind not in obj.attrs:
            obj.attrs[tok.kind] = tok.value


def _nearest(
    objects: list[_Obj], i: int, clause: int, lacking: str, ands: list[int]
) -> _Obj | None:
    """The object a loose word at ``i`` describes: same clause first, then one without that
    attribute, then one not across an "and", then the closest (the one before it on ties)."""

    def key(obj: _Obj) -> tuple[bool, bool, bool, int, int]:
        after = obj.shape_index < i
        lo, hi = (obj.shape_index, i) if after else (i, min(obj.start, len(ands) - 1))
        distance = hi - lo
        across_and = ands[hi] > ands[lo]
        return (obj.clause != clause, lacking in obj.attrs, across_and, distance, not after)

    best = min(objects, key=key, default=None)
    return best if best is not None and lacking not in best.attrs else None


def _assign_loose(toks: list[_Tok], clause_of: list[int], objects: list[_Obj]) -> None:
    """Positions anywhere, and attributes from clauses without a shape, to the nearest object."""
    shape_clauses = {obj.clause for obj in objects}
    loose = [
        i
        for i, tok in enumerate(toks)
        if tok.kind == "position"
        or (tok.kind in ("colour", "fill", "size") and clause_of[i] not in shape_clauses)
    ]
    if loose and not objects:
        objects.append(_Obj(len(toks), len(toks), -1, None, False))
    ands = [0]
    for tok in toks:
        ands.append(ands[-1] + (tok.kind == "word" and tok.value == "and"))
    for i in loose:
        kind = toks[i].kind
        target = _nearest(objects, i, clause_of[i], kind, ands)
        if target is not None:
            target.attrs[kind] = toks[i].value


def _partial_object(obj: _Obj) -> PartialObject:
    count = obj.attrs.get("count")
    return PartialObject(
        shape=obj.shape,
        colour=obj.attrs.get("colour"),
        fill=obj.attrs.get("fill"),
        size=obj.attrs.get("size"),
        position=obj.attrs.get("position"),
        count=COUNTS[count] if count is not None else None,
        plural=obj.plural,
    )


# --------------------------------------------------------------------------- entry point


@lru_cache(maxsize=4096)
def parse_prompt(prompt: str) -> PartialScene:
    """What ``prompt`` says about a demo-world scene (see the module docstring for the rules)."""
    toks = _tokenize(prompt)
    backgrounds = _find_backgrounds(toks)
    for start, end, _ in backgrounds:
        toks[start:end] = [_Tok("gap", "")] * (end - start)
    style = next((tok.value for tok in toks if tok.kind == "style"), None)
    toks = [_Tok("gap", "") if tok.kind == "style" else tok for tok in toks]
    clause_of = _clauses(toks)
    objects = _build_objects(toks, clause_of)
    _assign_loose(toks, clause_of, objects)
    return PartialScene(
        objects=tuple(_partial_object(obj) for obj in objects),
        background=backgrounds[0][2] if backgrounds else None,
        style=style,
    )
