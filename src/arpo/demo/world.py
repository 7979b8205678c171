"""The demo world's words, as data: shapes, colours, fills, sizes, positions, styles, counts.

Everything else in :mod:`arpo.demo` (the scene sampler, the prompt parser, the renderer and the
demo vocabulary) is derived from these constants, so adding a colour or a synonym here is enough
for it to be sampled, captioned, parsed and drawn.
"""

from __future__ import annotations

from dataclasses import dataclass

SHAPES: tuple[str, ...] = (
    "circle",
    "square",
    "triangle",
    "star",
    "heart",
    "ring",
    "cross",
    "crescent",
    "diamond",
    "hexagon",
)

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "orange": (245, 140, 30),
    "yellow": (245, 215, 40),
    "green": (50, 165, 70),
    "blue": (40, 90, 220),
    "purple": (135, 60, 190),
    "pink": (245, 135, 190),
    "brown": (125, 75, 35),
    "black": (20, 20, 20),
    "white": (245, 245, 245),
    "grey": (128, 128, 128),
    "cyan": (40, 200, 220),
}

FILLS: tuple[str, ...] = ("solid", "outlined", "striped", "dotted")

SIZES: tuple[str, ...] = ("small", "medium", "large")

#: Object size as a share of the image's shorter side.
SIZE_FRACTIONS: dict[str, float] = {"small": 0.15, "medium": 0.25, "large": 0.40}

POSITIONS: tuple[str, ...] = (
    "center",
    "left",
    "right",
    "top",
    "bottom",
    "top left",
    "top right",
    "bottom left",
    "bottom right",
)

#: Anchor of each position as (x, y) shares of the image's width and height.
POSITION_ANCHORS: dict[str, tuple[float, float]] = {
    "center": (0.5, 0.5),
    "left": (0.22, 0.5),
    "right": (0.78, 0.5),
    "top": (0.5, 0.22),
    "bottom": (0.5, 0.78),
    "top left": (0.22, 0.22),
    "top right": (0.78, 0.22),
    "bottom left": (0.22, 0.78),
    "bottom right": (0.78, 0.78),
}

STYLES: tuple[str, ...] = (
    "flat",
    "pencil sketch",
    "pixel art",
    "watercolour",
    "film grain",
    "blurred",
)

#: Count words and the number each one means ("a"/"an"/"one" are all one object).
COUNTS: dict[str, int] = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3}

#: The canonical word for each count, used in canonical prompts.
COUNT_WORDS: dict[int, str] = {1: "a", 2: "two", 3: "three"}

#: Most objects a sampled scene holds, counting each group's count.
MAX_OBJECTS = 3

#: Words that name "some shape" without saying which one.
GENERIC_SHAPES: tuple[str, ...] = ("shape", "object", "thing", "figure", "symbol")

#: Surface words (and multi-word phrases) -> the canonical world word they mean. Plurals of
#: shapes are derived (see :func:`plural`), and hyphens count as spaces ("polka-dot").
SYNONYMS: dict[str, str] = {
    # colours
    "gray": "grey",
    "silver": "grey",
    "violet": "purple",
    "lilac": "purple",
    "magenta": "pink",
    "crimson": "red",
    "scarlet": "red",
    "gold": "yellow",
    "golden": "yellow",
    "navy": "blue",
    "teal": "cyan",
    "turquoise": "cyan",
    "aqua": "cyan",
    "tan": "brown",
    # fills
    "filled": "solid",
    "filled in": "solid",
    "outline": "outlined",
    "outlines": "outlined",
    "hollow": "outlined",
    "stripes": "striped",
    "stripe": "striped",
    "stripy": "striped",
    "stripey": "striped",
    "dots": "dotted",
    "polka dot": "dotted",
    "polka dots": "dotted",
    "polka dotted": "dotted",
    "spotted": "dotted",
    "spots": "dotted",
    "spotty": "dotted",
    # sizes
    "big": "large",
    "huge": "large",
    "tiny": "small",
    "little": "small",
    "medium sized": "medium",
    "mid sized": "medium",
    # positions
    "centre": "center",
    "middle": "center",
    "centred": "center",
    "centered": "center",
    "upper left": "top left",
    "upper right": "top right",
    "lower left": "bottom left",
    "lower right": "bottom right",
    "left top": "top left",
    "right top": "top right",
    "left bottom": "bottom left",
    "right bottom": "bottom right",
    "upper": "top",
    "lower": "bottom",
    # styles
    "watercolor": "watercolour",
    "watercolours": "watercolour",
    "watercolors": "watercolour",
    "sketch": "pencil sketch",
    "sketched": "pencil sketch",
    "pencil drawing": "pencil sketch",
    "pixel": "pixel art",
    "pixelated": "pixel art",
    "pixelart": "pixel art",
    "8 bit": "pixel art",
    "grainy": "film grain",
    "grain": "film grain",
    "blurry": "blurred",
    "blur": "blurred",
    "out of focus": "blurred",
    # counts
    "single": "one",
    "1": "one",
    "2": "two",
    "3": "three",
    "pair of": "two",
    # shapes (their plurals are derived)
    "donut": "ring",
    "doughnut": "ring",
    "hoop": "ring",
    "moon": "crescent",
    "crescent moon": "crescent",
    "plus": "cross",
    "plus sign": "cross",
    "disc": "circle",
    "disk": "circle",
    "rhombus": "diamond",
    "lozenge": "diamond",
    # filler words, spelled one way
    "color": "colour",
    "colors": "colour",
    "colours": "colour",
    "colored": "coloured",
    "backdrop": "background",
    "backgrounds": "background",
    "&": "and",
}


@dataclass(frozen=True)
class Background:
    """A plain colour, or a gradient from ``colour`` to ``gradient_to``."""

    colour: str
    gradient_to: str | None = None

    @property
    def is_gradient(self) -> bool:
        return self.gradient_to is not None

    def phrase(self) -> str:
        """The canonical phrase, e.g. "on a blue background", "on a red to white gradient"."""
        if self.gradient_to is None:
            return f"on {article(self.colour)} {self.colour} background"
        return f"on {article(self.colour)} {self.colour} to {self.gradient_to} gradient background"


def plural(word: str) -> str:
    """English plural of a shape noun ("cross" -> "crosses", "plus sign" -> "plus signs")."""
    if word.endswith(("s", "x", "sh", "ch")):
        return word + "es"
    return word + "s"


def article(word: str) -> str:
    """ "an" before a vowel sound, else "a"."""
    return "an" if word[:1] in "aeiou" else "a"


def position_phrase(position: str) -> str:
    """The canonical phrase for a position: "in the top left", "on the left", "at the top"."""
    if position in ("left", "right"):
        return f"on the {position}"
    if position in ("top", "bottom"):
        return f"at the {position}"
    return f"in the {position}"


def canonical_kinds() -> dict[str, str]:
    """Every canonical world word -> its kind (shape, colour, fill, size, position, style...)."""
    kinds: dict[str, str] = {}
    groups: dict[str, tuple[str, ...]] = {
        "shape": SHAPES,
        "colour": tuple(COLOURS),
        "fill": FILLS,
        "size": SIZES,
        "position": POSITIONS,
        "style": STYLES,
        "count": tuple(COUNTS),
        "generic": GENERIC_SHAPES,
    }
    for kind, words in groups.items():
        for word in words:
            kinds[word] = kind
    return kinds
