"""Demo-world scenes: what an image holds, sampled at random, and the true prompts that say so.

A :class:`Scene` is 1-3 objects in total (a group of two stars counts two) in at most three
groups, a background and a style. :func:`caption` writes a true prompt in varied wordings,
:func:`canonical_prompt` in one fixed wording; both parse back (:func:`parse_prompt`) to the
scene. :func:`attribute_score` scores a prompt against a scene: recall (how much of what the
render shows the prompt states), precision (how much of what it states is true) and F1.
"""

from __future__ import annotations

import random
from collections.abc import Sequence, Set
from dataclasses import dataclass, replace

from arpo.demo.parse import PartialObject, PartialScene, parse_prompt
from arpo.demo.world import (
    COLOURS,
    COUNT_WORDS,
    FILLS,
    MAX_OBJECTS,
    POSITIONS,
    SHAPES,
    SIZES,
    STYLES,
    Background,
    article,
    plural,
    position_phrase,
)

__all__ = [
    "ATTRIBUTES",
    "AttributeScore",
    "Background",
    "Scene",
    "SceneObject",
    "attribute_hits",
    "attribute_recall",
    "attribute_score",
    "attributes",
    "canonical_parts",
    "canonical_prompt",
    "caption",
    "change_attribute",
    "complete_scene",
    "described_facts",
    "hidden_slots",
    "sample_scene",
    "scene_from_partial",
    "seed_slots",
    "visible_attributes",
]

MAX_GROUPS = 6  # most object groups the renderer draws for a free-form prompt


@dataclass(frozen=True)
class SceneObject:
    """A group of ``count`` identical objects; ``position`` is None unless ``count == 1``."""

    shape: str
    colour: str
    fill: str
    size: str
    position: str | None
    count: int = 1


@dataclass(frozen=True)
class Scene:
    objects: tuple[SceneObject, ...]
    background: Background
    style: str

    @property
    def total_objects(self) -> int:
        return sum(obj.count for obj in self.objects)


# --------------------------------------------------------------------------- sampling

_PARTITIONS: dict[int, tuple[tuple[int, ...], ...]] = {
    1: ((1,),),
    2: ((1, 1), (2,)),
    3: ((1, 1, 1), (2, 1), (1, 2), (3,)),
}


def _sample_background(rng: random.Random) -> Background:
    if rng.random() < 0.3:
        first, second = rng.sample(list(COLOURS), 2)
        return Background(first, second)
    return Background(rng.choice(list(COLOURS)))


def _background_colours(background: Background) -> set[str]:
    return {background.colour, background.gradient_to or background.colour}


def sample_scene(rng: random.Random, n_objects: int | None = None) -> Scene:
    """A random scene with ``n_objects`` objects in total (1-3; random when None)."""
    if n_objects is None:
        n_objects = rng.choices((1, 2, 3), weights=(0.4, 0.35, 0.25))[0]
    if n_objects not in _PARTITIONS:
        raise ValueError(f"n_objects must be 1 to {MAX_OBJECTS}, not {n_objects}")
    background = _sample_background(rng)
    colours = [c for c in COLOURS if c not in _background_colours(background)]
    used: set[tuple[str, str]] = set()
    free_positions = list(POSITIONS)
    objects = []
    for count in rng.choice(_PARTITIONS[n_objects]):
        shape, colour = rng.choice(SHAPES), rng.choice(colours)
        while (shape, colour) in used:
            shape, colour = rng.choice(SHAPES), rng.choice(colours)
        used.add((shape, colour))
        position = None
        if count == 1:
            position = rng.choice(free_positions)
            free_positions.remove(position)
        fill, size = rng.choice(FILLS), rng.choice(SIZES)
        objects.append(SceneObject(shape, colour, fill, size, position, count))
    return Scene(tuple(objects), background, rng.choice(STYLES))


ATTRIBUTES: tuple[str, ...] = (
    "colour",
    "shape",
    "fill",
    "size",
    "position",
    "count",
    "background",
    "style",
)


def change_attribute(scene: Scene, attribute: str, rng: random.Random) -> Scene | None:
    """``scene`` with one attribute changed to another valid value (a hard negative), or
    None when the scene has nothing to change for that attribute (e.g. position of a group)."""
    if attribute == "style":
        return replace(scene, style=_other(STYLES, scene.style, rng))
    if attribute == "background":
        bg = scene.background
        taken = {obj.colour for obj in scene.objects} | {bg.gradient_to}
        colour = _other([c for c in COLOURS if c not in taken], bg.colour, rng)
        return replace(scene, background=replace(bg, colour=colour))
    index = rng.randrange(len(scene.objects))
    obj = scene.objects[index]
    changed: SceneObject | None
    if attribute == "colour":
        avoid = _background_colours(scene.background)
        changed = replace(
            obj, colour=_other([c for c in COLOURS if c not in avoid], obj.colour, rng)
        )
    elif attribute == "shape":
        changed = replace(obj, shape=_other(SHAPES, obj.shape, rng))
    elif attribute == "fill":
        changed = replace(obj, fill=_other(FILLS, obj.fill, rng))
    elif attribute == "size":
        changed = replace(obj, size=_other(SIZES, obj.size, rng))
    elif attribute == "position":
        taken = {o.position for o in scene.objects}
        free = [p for p in POSITIONS if p not in taken]
        changed = replace(obj, position=rng.choice(free)) if obj.position and free else None
    elif attribute == "count":
        changed = _recount(scene, obj, rng)
    else:
        raise ValueError(f"unknown attribute {attribute!r}; one of {', '.join(ATTRIBUTES)}")
    if changed is None:
        return None
    objects = list(scene.objects)
    objects[index] = changed
    return replace(scene, objects=tuple(objects))


def _recount(scene: Scene, obj: SceneObject, rng: random.Random) -> SceneObject | None:
    room = MAX_OBJECTS - scene.total_objects + obj.count
    counts = [n for n in range(1, room + 1) if n != obj.count]
    if not counts:
        return None
    count = rng.choice(counts)
    if count == 1:
        taken = {o.position for o in scene.objects}
        return replace(obj, count=1, position=rng.choice([p for p in POSITIONS if p not in taken]))
    return replace(obj, count=count, position=None)


def _other(options: Sequence[str], current: str, rng: random.Random) -> str:
    return rng.choice([option for option in options if option != current] or [current])


def complete_scene(partial: PartialScene, rng: random.Random) -> Scene:
    """A drawable scene: what ``partial`` states, the rest drawn from ``rng``.

    Every value is drawn whether or not the prompt states it, so stating one more attribute
    never changes the ones still left to the seed: like a diffusion model with a fixed seed,
    adding a word changes only what the word says.
    """
    drawn_background = Background(rng.choice(list(COLOURS)))
    background = partial.background or drawn_background
    avoid = _background_colours(background)
    objects = partial.objects[:MAX_GROUPS] or (PartialObject(),)
    taken = {obj.position for obj in objects if obj.position is not None}
    completed = []
    for obj in objects:
        drawn_count = rng.choice((2, 3))
        start = rng.randrange(len(POSITIONS))
        shape, colour = rng.choice(SHAPES), _colour_avoiding(rng.randrange(len(COLOURS)), avoid)
        fill, size = rng.choice(FILLS), rng.choice(SIZES)
        count = obj.count or (drawn_count if obj.plural else 1)
        position = obj.position if count == 1 else None
        if count == 1 and position is None:
            position = _free_position(start, taken)
            taken.add(position)
        completed.append(
            SceneObject(
                shape=obj.shape or shape,
                colour=obj.colour or colour,
                fill=obj.fill or fill,
                size=obj.size or size,
                position=position,
                count=count,
            )
        )
    return Scene(tuple(completed), background, partial.style or "flat")


def _colour_avoiding(index: int, avoid: set[str]) -> str:
    names = list(COLOURS)
    for step in range(len(names)):
        name = names[(index + step) % len(names)]
        if name not in avoid:
            return name
    return names[index]


def _free_position(start: int, taken: set[str]) -> str:
    for step in range(len(POSITIONS)):
        position = POSITIONS[(start + step) % len(POSITIONS)]
        if position not in taken:
            return position
    return POSITIONS[start]


def scene_from_partial(partial: PartialScene) -> Scene | None:
    """The scene ``partial`` states completely, or None when anything is unstated."""
    objects = []
    for obj in partial.objects:
        fields = (obj.shape, obj.colour, obj.fill, obj.size, obj.count)
        if any(value is None for value in fields) or (obj.count == 1) != (obj.position is not None):
            return None
        objects.append(
            SceneObject(obj.shape, obj.colour, obj.fill, obj.size, obj.position, obj.count)  # type: ignore[arg-type]
        )
    if not objects or partial.background is None or partial.style is None:
        return None
    return Scene(tuple(objects), partial.background, partial.style)


# --------------------------------------------------------------------------- prompts


#: A piece of a canonical prompt and the slot (as :func:`_slot` names it) it states; None for
#: the words between the pieces.
_Piece = tuple[str, "Fact | None"]


def _object_pieces(i: int, obj: SceneObject) -> list[_Piece]:
    noun = obj.shape if obj.count == 1 else plural(obj.shape)
    count = article(obj.size) if obj.count == 1 else COUNT_WORDS[obj.count]
    pieces: list[_Piece] = [(count, ("count", i))]
    for name, value in (("size", obj.size), ("colour", obj.colour), ("fill", obj.fill)):
        pieces += [(" ", None), (value, ("object", i, name))]
    pieces += [(" ", None), (noun, ("object", i, "shape"))]
    if obj.position:
        pieces += [(" ", None), (position_phrase(obj.position), ("object", i, "position"))]
    return pieces


def canonical_parts(scene: Scene, seed: Set[Fact] = frozenset()) -> list[tuple[str, bool]]:
    """:func:`canonical_prompt` in pieces, each marked True where it states a slot in
    ``seed`` (what the seed chose, :func:`seed_slots`); adjacent pieces with the same mark are
    merged, and the pieces joined are the canonical prompt."""
    pieces: list[_Piece] = []
    for i, obj in enumerate(scene.objects):
        pieces += [(", ", None)] if i else []
        pieces += _object_pieces(i, obj)
    first = "colour" if scene.background.gradient_to is None else "from"
    pieces += [(", ", None), (scene.background.phrase(), ("background", first))]
    pieces += [(", ", None), (scene.style, ("style",))]
    marks = [None if slot is None else slot in seed for _, slot in pieces]
    merged: list[tuple[str, bool]] = []
    for k, ((text, _), mark) in enumerate(zip(pieces, marks, strict=True)):
        if mark is None:  # the words between two pieces the seed chose are the seed's too
            mark = bool(marks[k - 1] and k + 1 < len(marks) and marks[k + 1])
        if merged and merged[-1][1] == mark:
            merged[-1] = (merged[-1][0] + text, mark)
        else:
            merged.append((text, mark))
    return merged


def canonical_prompt(scene: Scene) -> str:
    """The scene in one fixed comma-separated wording, e.g.
    "a large red striped star in the top left, on a blue background, pixel art"."""
    return "".join(text for text, _ in canonical_parts(scene))


def seed_slots(partial: PartialScene, scene: Scene) -> set[Fact]:
    """The slots of ``scene`` (``complete_scene(partial, ...)``, as :func:`_slot` names them)
    that ``partial`` does not state: the seed chose them (the style, the default ``flat``).
    A singular noun states a count of one; a plural without a count word leaves it to the
    seed."""
    chosen: set[Fact] = set()
    if partial.style is None:
        chosen.add(("style",))
    if partial.background is None:
        chosen |= {_slot(fact) for fact in attributes(scene) if fact[0] == "background"}
    stated = partial.objects[:MAX_GROUPS] or (PartialObject(),)
    for i, (given, obj) in enumerate(zip(stated, scene.objects, strict=False)):
        chosen |= {("object", i, name) for name in _OBJECT_FIELDS if getattr(given, name) is None}
        if obj.position is None:
            chosen.discard(("object", i, "position"))
        if given.count is None and given.plural:
            chosen.add(("count", i))
    return chosen


_COLOUR_WORDS = {"grey": ("grey", "gray"), "purple": ("purple", "violet")}
_FILL_WORDS = {
    "solid": ("solid", "filled"),
    "outlined": ("outlined", "hollow", "outline"),
    "striped": ("striped", "stripy"),
    "dotted": ("dotted", "spotted", "polka-dot"),
}
_FILL_TRAILERS = {
    "solid": ("filled in",),
    "outlined": ("in outline",),
    "striped": ("with stripes",),
    "dotted": ("with dots", "with polka dots"),
}
_SIZE_WORDS = {
    "small": ("small", "tiny", "little"),
    "medium": ("medium", "medium-sized"),
    "large": ("large", "big", "huge"),
}
_SHAPE_WORDS = {
    "ring": ("ring", "donut"),
    "crescent": ("crescent", "crescent moon", "moon"),
    "cross": ("cross", "plus sign"),
    "circle": ("circle", "disc"),
    "diamond": ("diamond", "rhombus"),
}
_POSITION_WORDS = {
    "center": ("in the center", "in the centre", "in the middle", "at the center", "centered"),
    "left": ("on the left", "at the left", "to the left", "left"),
    "right": ("on the right", "at the right side", "right"),
    "top": ("at the top", "on top", "top"),
    "bottom": ("at the bottom", "bottom"),
    "top left": ("in the top left", "in the upper left corner", "at the top-left", "top left"),
    "top right": ("in the top right", "in the upper right", "top-right corner"),
    "bottom left": ("in the bottom left", "in the lower left corner", "bottom-left"),
    "bottom right": ("in the bottom right", "at the lower right", "bottom right corner"),
}
_STYLE_SUFFIXES = {
    "flat": ("flat", "flat illustration", "flat vector art", "flat design"),
    "pencil sketch": ("pencil sketch", "sketch", "pencil drawing"),
    "pixel art": ("pixel art", "8-bit pixel art", "pixelated", "8-bit"),
    "watercolour": ("watercolour", "watercolor", "watercolour painting"),
    "film grain": ("film grain", "grainy film photo", "grainy"),
    "blurred": ("blurred", "blurry", "out of focus"),
}
_STYLE_PREFIXES = {
    "flat": ("a flat illustration of", "flat vector art of"),
    "pencil sketch": ("a pencil sketch of", "a sketch of", "pencil drawing of"),
    "pixel art": ("pixel art of", "8-bit pixel art of", "a pixelated image of"),
    "watercolour": ("a watercolour painting of", "watercolor painting of"),
    "film grain": ("a grainy film photo of", "film grain photo of"),
    "blurred": ("a blurry photo of", "an out of focus photo of"),
}


def _pick(rng: random.Random, options: dict[str, tuple[str, ...]], value: str) -> str:
    return rng.choice(options.get(value, (value,)))


def _varied_object(obj: SceneObject, rng: random.Random) -> str:
    """A varied phrase for ``obj``. Its fill may come after the shape ("with stripes"), so the
    phrase must be followed by "and", a comma or the end of the prompt."""
    fill = _pick(rng, _FILL_WORDS, obj.fill)
    trailing = rng.random() < 0.2
    adjectives = [_pick(rng, _SIZE_WORDS, obj.size), _pick(rng, _COLOUR_WORDS, obj.colour)]
    if not trailing:
        adjectives.append(fill)
    rng.shuffle(adjectives)
    noun = _pick(rng, _SHAPE_WORDS, obj.shape)
    if obj.count == 1:
        count = rng.choice(("a", "a", "a", "one", "a single"))
        count = article(adjectives[0]) if count == "a" else count
    else:
        count = COUNT_WORDS[obj.count] if rng.random() < 0.8 else str(obj.count)
        noun = plural(noun)
    words = [count, *adjectives, noun]
    if trailing:
        words.append(_pick(rng, _FILL_TRAILERS, obj.fill))
    if obj.position is not None:
        words.append(_pick(rng, _POSITION_WORDS, obj.position))
    return " ".join(words)


def _varied_objects(scene: Scene, rng: random.Random) -> str:
    text = ""
    for k, obj in enumerate(scene.objects):
        phrase = _varied_object(obj, rng)
        if k == 0:
            text = phrase
        elif k == len(scene.objects) - 1:
            text += rng.choice((" and ", ", ", ", and ")) + phrase
        else:
            text += rng.choice((", ", " and ")) + phrase
    return text


def _varied_background(background: Background, rng: random.Random, bare: bool) -> str:
    """A background phrase; ``bare`` ones need a comma before them after object words."""
    if background.gradient_to is None:
        colour = _pick(rng, _COLOUR_WORDS, background.colour)
        options = (f"{colour} background", f"background: {colour}", f"plain {colour} backdrop")
        joined = (f"on {article(colour)} {colour} background", f"with a {colour} background")
    else:
        a = _pick(rng, _COLOUR_WORDS, background.colour)
        b = _pick(rng, _COLOUR_WORDS, background.gradient_to)
        options = (f"{a} to {b} gradient background", f"gradient from {a} to {b} background")
        joined = (
            f"on {article(a)} {a} to {b} gradient",
            f"with a gradient background from {a} to {b}",
            f"on a {a}-to-{b} gradient backdrop",
        )
    return rng.choice(options if bare else joined)


def caption(scene: Scene, rng: random.Random) -> str:
    """A true prompt for ``scene`` in one of many wordings; it states every attribute."""
    objects = _varied_objects(scene, rng)
    style = scene.style
    form = rng.randrange(5)
    if form == 0:
        background = _varied_background(scene.background, rng, bare=False)
        return f"{objects} {background}, {_pick(rng, _STYLE_SUFFIXES, style)}"
    if form == 1:
        background = _varied_background(scene.background, rng, bare=True)
        return f"{_pick(rng, _STYLE_SUFFIXES, style)}: {objects}, {background}"
    if form == 2:
        background = _varied_background(scene.background, rng, bare=False)
        return f"{_pick(rng, _STYLE_PREFIXES, style)} {objects} {background}"
    background = _varied_background(scene.background, rng, bare=True)
    if form == 3:
        return f"{background}, {objects}, {_pick(rng, _STYLE_SUFFIXES, style)}"
    return f"{objects}, {background}, {_pick(rng, _STYLE_SUFFIXES, style)} style"


# --------------------------------------------------------------------------- scoring

_OBJECT_FIELDS = ("shape", "colour", "fill", "size", "position")
Fact = tuple[str | int, ...]


def attributes(scene: Scene) -> set[Fact]:
    """The scene's facts: ("object", i, field, value), ("count", i, n), ("background", ...),
    ("style", s). Positions are facts only for single objects."""
    facts: set[Fact] = {("style", scene.style)}
    background = scene.background
    if background.gradient_to is None:
        facts.add(("background", "colour", background.colour))
    else:
        facts.add(("background", "from", background.colour))
        facts.add(("background", "to", background.gradient_to))
    for i, obj in enumerate(scene.objects):
        facts.add(("count", i, obj.count))
        for name in _OBJECT_FIELDS:
            value = getattr(obj, name)
            if value is not None:
                facts.add(("object", i, name, value))
    return facts


#: Sizes of object whose colour a pencil sketch does not show (see :func:`hidden_slots`).
_SKETCH_HIDES_COLOUR = ("small", "medium")


def _slot(fact: Fact) -> Fact:
    """What a fact is about, without its value: ("object", i, "colour"), ("count", i), ..."""
    return fact[:-1]


def hidden_slots(scene: Scene) -> set[Fact]:
    """The attributes of ``scene`` its render does not show (as :func:`_slot` names them).

    The one place the renderer's rules (:mod:`arpo.demo.render`) decide what can be judged:

    * a *pencil sketch* redraws the picture in graphite (edges and hatching) under a 20%
      coloured wash, so the colour of a small or medium object does not show (measured on 60
      one-object scenes: the demo CLIP tells one colour from another 0.63-0.67 of the time,
      against 0.98 in flat style; the pixels change 40% as much); a large object's wash, and
      the background's, do show (0.90 and 1.00);
    * an object drawn in the colour of a plain background does not show at all: none of its
      attributes (count included) can be judged.

    Every other attribute of every style shows. Facts about hidden attributes are neither hits
    nor misses, and a prompt's claims about them are neither right nor wrong.
    """
    hidden: set[Fact] = set()
    background = scene.background
    plain = background.colour if background.gradient_to is None else None
    for i, obj in enumerate(scene.objects):
        if obj.colour == plain:
            hidden |= {("object", i, name) for name in _OBJECT_FIELDS} | {("count", i)}
        elif scene.style == "pencil sketch" and obj.size in _SKETCH_HIDES_COLOUR:
            hidden.add(("object", i, "colour"))
    return hidden


def visible_attributes(scene: Scene) -> set[Fact]:
    """The facts of ``scene`` (:func:`attributes`) that its render shows."""
    hidden = hidden_slots(scene)
    return {fact for fact in attributes(scene) if _slot(fact) not in hidden}


@dataclass(frozen=True)
class AttributeScore:
    """How well a prompt states a scene, as human-readable facts.

    ``hits``: shown facts of the scene the prompt states; ``misses``: shown facts it does not
    state (or states wrongly); ``wrong``: what the prompt states that is false (a wrong value,
    a count or position the scene does not have, every claim of an extra object);
    ``hidden``: facts the render does not show (:func:`hidden_slots`), not judged;
    ``seed_hits``: facts the seed chose (not the user's prompt) that the prompt states, not
    judged either.
    """

    hits: tuple[str, ...]
    misses: tuple[str, ...]
    wrong: tuple[str, ...]
    hidden: tuple[str, ...]
    seed_hits: tuple[str, ...] = ()

    @property
    def recall(self) -> float:
        """Share of the scene's shown facts that the prompt states."""
        shown = len(self.hits) + len(self.misses)
        return len(self.hits) / shown if shown else 1.0

    @property
    def precision(self) -> float:
        """Share of the prompt's judged claims that are true; 0.0 when it claims nothing."""
        claimed = len(self.hits) + len(self.wrong)
        return len(self.hits) / claimed if claimed else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def _claims(obj: PartialObject) -> list[tuple[str, str | int]]:
    """What a stated object says: its stated fields, and its count when a count word ("a",
    "one", "two", "three") says it. A bare "stars" or "star" states no count: naming an
    object does not earn its count."""
    claims: list[tuple[str, str | int]] = [
        (name, getattr(obj, name)) for name in _OBJECT_FIELDS if getattr(obj, name) is not None
    ]
    if obj.count is not None:
        claims.append(("count", obj.count))
    return claims


def _object_facts(index: int, claims: list[tuple[str, str | int]]) -> list[Fact]:
    return [
        ("count", index, value) if name == "count" else ("object", index, name, value)
        for name, value in claims
    ]


def _match_objects(
    truth: set[Fact], hidden: set[Fact], n_true: int, stated: Sequence[PartialObject]
) -> dict[int, int]:
    """The one-to-one assignment of stated objects (j) to the scene's objects (i) that
    maximises the number of true, shown facts the pairs share. A pair must share an attribute
    besides the count (a red star is not the green heart because both are single), else the
    stated object stays unmatched: an extra object. Exact (dynamic programming over subsets
    of the scene's objects); ties go to the earliest pairing."""
    claims = [_claims(obj) for obj in stated]

    def agreement(i: int, j: int) -> int:
        facts = _object_facts(i, claims[j])
        shared = [fact for fact in facts if fact in truth and _slot(fact) not in hidden]
        return len(shared) if any(fact[0] == "object" for fact in shared) else 0

    table = [[agreement(i, j) for i in range(n_true)] for j in range(len(stated))]
    best: dict[tuple[int, int], tuple[int, tuple[tuple[int, int], ...]]] = {}

    def solve(j: int, used: int) -> tuple[int, tuple[tuple[int, int], ...]]:
        if j == len(stated):
            return 0, ()
        key = (j, used)
        if key not in best:
            choice = solve(j + 1, used)  # stated object j unmatched
            for i in range(n_true):
                if used & (1 << i) or table[j][i] == 0:
                    continue
                score, pairs = solve(j + 1, used | (1 << i))
                if score + table[j][i] > choice[0]:
                    choice = (score + table[j][i], ((j, i), *pairs))
            best[key] = choice
        return best[key]

    return {j: i for j, i in solve(0, 0)[1]}


def _stated_facts(scene: Scene, prompt: str) -> list[Fact]:
    """The prompt's claims, as facts about ``scene``'s objects where a stated object matches
    one, else as ("extra", j, field, value) facts (an extra object claims at least that it
    exists)."""
    stated = parse_prompt(prompt)
    facts: list[Fact] = []
    if stated.style is not None:
        facts.append(("style", stated.style))
    if stated.background is not None:
        if stated.background.gradient_to is None:
            facts.append(("background", "colour", stated.background.colour))
        else:
            facts.append(("background", "from", stated.background.colour))
            facts.append(("background", "to", stated.background.gradient_to))
    truth, hidden = attributes(scene), hidden_slots(scene)
    matched = _match_objects(truth, hidden, len(scene.objects), stated.objects)
    for j, obj in enumerate(stated.objects):
        claims = _claims(obj)
        if j in matched:
            facts.extend(_object_facts(matched[j], claims))
        else:
            facts.extend(("extra", j, name, value) for name, value in claims or [("shape", "?")])
    return facts


def attribute_score(
    true_scene: Scene, prompt: str, seed: Set[Fact] = frozenset()
) -> AttributeScore:
    """Hits, misses, wrong claims and hidden facts of ``prompt`` against ``true_scene``.

    ``seed``: slots the seed chose rather than the user (:func:`seed_slots`); facts about them
    are not judged (neither missed nor wrong), and those the prompt states are ``seed_hits``.
    """
    truth, hidden = attributes(true_scene), hidden_slots(true_scene)
    stated = _stated_facts(true_scene, prompt)
    shown_claims = [fact for fact in stated if _slot(fact) not in hidden]
    judged = [fact for fact in shown_claims if _slot(fact) not in seed]
    right = {fact for fact in shown_claims if fact in truth}
    ordered = sorted(truth, key=_fact_order)
    shown = [fact for fact in ordered if _slot(fact) not in hidden]
    return AttributeScore(
        hits=tuple(_describe(f) for f in shown if f in right and _slot(f) not in seed),
        misses=tuple(_describe(f) for f in shown if f not in right and _slot(f) not in seed),
        wrong=tuple(_describe(fact) for fact in judged if fact not in truth),
        hidden=tuple(_describe(fact) for fact in ordered if _slot(fact) in hidden),
        seed_hits=tuple(_describe(f) for f in shown if f in right and _slot(f) in seed),
    )


def described_facts(scene: Scene, slots: Set[Fact]) -> list[str]:
    """The facts of ``scene`` about ``slots``, human-readable, in the scene's order."""
    return [_describe(f) for f in sorted(attributes(scene), key=_fact_order) if _slot(f) in slots]


def attribute_recall(true_scene: Scene, prompt: str) -> float:
    """Share of ``true_scene``'s shown attributes that ``prompt`` states (0.0 to 1.0)."""
    return attribute_score(true_scene, prompt).recall


def _describe(fact: Fact) -> str:
    if fact[0] == "extra":
        return f"extra object: {fact[2]} {fact[3]}"
    if fact[0] == "object":
        return f"{fact[2]} {fact[3]}"
    if fact[0] == "count":
        return f"count {fact[2]}"
    if fact[0] == "background":
        if fact[1] == "colour":
            return f"background {fact[2]}"
        return f"background gradient {fact[1]} {fact[2]}"
    return f"style {fact[1]}"


def attribute_hits(true_scene: Scene, prompt: str) -> tuple[list[str], list[str]]:
    """Human-readable shown facts of ``true_scene`` that ``prompt`` states, and those it
    misses (:func:`attribute_score` has the rest)."""
    score = attribute_score(true_scene, prompt)
    return list(score.hits), list(score.misses)


def _fact_order(fact: Fact) -> tuple[int, int, int]:
    if fact[0] in ("object", "count"):
        field_rank = _OBJECT_FIELDS.index(str(fact[2])) if fact[0] == "object" else -1
        return (0, int(fact[1]), field_rank)
    return (1 if fact[0] == "background" else 2, 0, 0 if fact[1] in ("colour", "from") else 1)
