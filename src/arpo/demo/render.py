"""The demo world's renderer: prompts in, small procedural images out (numpy + Pillow, CPU).

:class:`DemoRenderer` parses each prompt (:func:`arpo.demo.parse.parse_prompt`), fills in what
the prompt leaves unstated from a random generator seeded by ``(prompt, seed)``, and draws the
scene: background, shapes with their fills, then the style as a post-process. Renders are
deterministic for (prompt, seed, width, height); the object layout is the same at every size.
``RenderParams.steps``, ``guidance`` and ``negative_prompt`` mean nothing here and are ignored.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from arpo.demo.parse import PartialScene, parse_prompt
from arpo.demo.scenes import Scene, SceneObject, complete_scene
from arpo.demo.world import COLOURS, POSITION_ANCHORS, SIZE_FRACTIONS
from arpo.tools.families import FamilyProfile, TextEncoder
from arpo.tools.t2i import RenderParams

__all__ = [
    "DEMO_PROFILE",
    "DEMO_RENDER_PARAMS",
    "DemoRenderer",
    "draw_scene",
    "render_prompt",
    "scene_for_prompt",
]

RENDERER_VERSION = 2
#: Render settings for the demo world: 128x128, one "step" (the renderer ignores steps).
DEMO_RENDER_PARAMS = RenderParams(steps=1, guidance=0.0, width=128, height=128)

#: The demo renderer's family profile: 128 px, any multiple of 8, one "step", no guidance, no
#: negative prompt (it ignores one, so one is refused rather than silently dropped); its text
#: encoder is the demo CLIP's (56 tokens of its word-level vocabulary, counted exactly).
DEMO_PROFILE = FamilyProfile(
    name="demo",
    title="arpo demo world",
    pipelines=(),
    native_size=128,
    size_multiple=8,
    steps=1,
    guidance=0.0,
    dtype={"cuda": "float32", "mps": "float32", "cpu": "float32"},
    negative_prompt="none",
    text_encoders=(TextEncoder(kind="word", max_tokens=56),),
    prompt_style="tags",
    safety_checker=False,
)

_SUPERSAMPLE = 2
_JITTER = 0.03  # seeded jitter of positioned objects, as a share of the image side
_ROTATION = math.radians(12)  # largest seeded tilt of a shape
_PAPER = np.array([244.0, 240.0, 230.0], dtype=np.float32)

Points = list[tuple[float, float]]


class DemoRenderer:
    """Renders demo-world prompts; satisfies :class:`arpo.tools.t2i.Renderer`."""

    name = f"arpo-demo-renderer-v{RENDERER_VERSION}"
    profile = DEMO_PROFILE

    def reading(self, prompt: str) -> PartialScene:
        """What this renderer takes from ``prompt``: the scene it states (words outside the
        world are ignored). Two prompts with one reading draw the same scene."""
        return parse_prompt(prompt)

    def render(
        self, prompts: Sequence[str], seeds: Sequence[int], params: RenderParams
    ) -> list[Image.Image]:
        if len(prompts) != len(seeds):
            raise ValueError("render needs one seed per prompt")
        return [
            render_prompt(prompt, int(seed), params.width, params.height)
            for prompt, seed in zip(prompts, seeds, strict=True)
        ]


def render_prompt(prompt: str, seed: int, width: int = 128, height: int = 128) -> Image.Image:
    """One image of ``prompt``; whatever it leaves unstated is drawn from the seed alone, so
    two prompts that differ in one attribute render the same layout."""
    return draw_scene(scene_for_prompt(prompt, seed), width, height, random.Random(f"draw|{seed}"))


def scene_for_prompt(prompt: str, seed: int) -> Scene:
    """The complete scene that :func:`render_prompt` draws for (prompt, seed)."""
    return complete_scene(parse_prompt(prompt), random.Random(f"scene|{seed}"))


def draw_scene(scene: Scene, width: int, height: int, rng: random.Random) -> Image.Image:
    """Draw a complete scene; ``rng`` decides layout jitter, tilts, gradients and noise."""
    canvas = _background(scene, width, height, rng)
    side = min(width, height)
    placed: list[tuple[float, float, float]] = []
    instances: list[tuple[SceneObject, float, float, float]] = []
    ordered = sorted(scene.objects, key=lambda obj: obj.position is None)  # anchored first
    for obj in ordered:
        radius = SIZE_FRACTIONS[obj.size] * side / 2
        for _ in range(obj.count):
            x, y = _place(obj, radius, width, height, placed, rng)
            placed.append((x, y, radius))
            instances.append((obj, x, y, radius))
    for obj, x, y, radius in sorted(instances, key=lambda item: -item[3]):  # big ones first
        _draw_object(canvas, obj, x, y, radius, rng)
    noise = np.random.default_rng(rng.getrandbits(64))
    styled = _STYLES[scene.style](canvas, noise)
    return Image.fromarray(np.clip(styled + 0.5, 0, 255).astype(np.uint8), "RGB")


# --------------------------------------------------------------------------- layout


def _rgb(colour: str) -> np.ndarray:
    return np.array(COLOURS[colour], dtype=np.float32)


@lru_cache(maxsize=64)
def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (y, x) as float32 arrays."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    return yy, xx


def _background(scene: Scene, width: int, height: int, rng: random.Random) -> np.ndarray:
    background = scene.background
    start = _rgb(background.colour)
    if background.gradient_to is None:
        return np.broadcast_to(start, (height, width, 3)).copy()
    yy, xx = _grid(height, width)
    t = yy / max(height - 1, 1)
    if rng.random() < 0.5:  # diagonal, top left to bottom right
        t = (t + xx / max(width - 1, 1)) / 2
    return start + (_rgb(background.gradient_to) - start) * t[..., None]


def _place(
    obj: SceneObject,
    radius: float,
    width: int,
    height: int,
    placed: list[tuple[float, float, float]],
    rng: random.Random,
) -> tuple[float, float]:
    if obj.position is not None:
        ax, ay = POSITION_ANCHORS[obj.position]
        side = min(width, height)
        x = ax * width + rng.uniform(-_JITTER, _JITTER) * side
        y = ay * height + rng.uniform(-_JITTER, _JITTER) * side
        return _clamp(x, radius, width), _clamp(y, radius, height)
    return _scatter(radius, width, height, placed, rng)


def _clamp(value: float, radius: float, limit: int) -> float:
    return min(max(value, radius + 1), limit - radius - 1) if limit > 2 * radius + 2 else limit / 2


def _scatter(
    radius: float,
    width: int,
    height: int,
    placed: list[tuple[float, float, float]],
    rng: random.Random,
) -> tuple[float, float]:
    """The best of a few random spots: the one farthest (relative to sizes) from the others."""
    best, best_gap = (width / 2, height / 2), -math.inf
    for _ in range(24):
        x = _clamp(rng.random() * width, radius, width)
        y = _clamp(rng.random() * height, radius, height)
        gap = min(
            (math.hypot(x - px, y - py) - (radius + pr) for px, py, pr in placed),
            default=math.inf,
        )
        if gap > best_gap:
            best, best_gap = (x, y), gap
        if gap >= 0.15 * radius:
            break
    return best


# --------------------------------------------------------------------------- shapes


def _polygon(points: Points, angle: float) -> Points:
    cos, sin = math.cos(angle), math.sin(angle)
    return [(x * cos - y * sin, x * sin + y * cos) for x, y in points]


def _regular(n: int, start: float, radii: Sequence[float] = (1.0,)) -> Points:
    points = []
    for k in range(n):
        radius, angle = radii[k % len(radii)], start + 2 * math.pi * k / n
        points.append((radius * math.cos(angle), radius * math.sin(angle)))
    return points


@lru_cache(maxsize=1)
def _heart() -> Points:
    points = []
    for k in range(48):
        t = 2 * math.pi * k / 48
        x = 16 * math.sin(t) ** 3
        y = -(13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t))
        points.append((x, y))
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    cx, cy = (max(xs) + min(xs)) / 2, (max(ys) + min(ys)) / 2
    scale = 2 / max(max(xs) - min(xs), max(ys) - min(ys))
    return [((x - cx) * scale, (y - cy) * scale) for x, y in points]


_OUTLINES: dict[str, Callable[[], Points]] = {
    "square": lambda: [(-0.82, -0.82), (0.82, -0.82), (0.82, 0.82), (-0.82, 0.82)],
    "triangle": lambda: [(x * 1.1, y * 1.1 + 0.22) for x, y in _regular(3, -math.pi / 2)],
    "star": lambda: _regular(10, -math.pi / 2, (1.0, 0.45)),
    "heart": _heart,
    "cross": lambda: [
        p for k in range(4) for p in _polygon([(-0.3, -1), (0.3, -1), (0.3, -0.3)], k * math.pi / 2)
    ],
    "diamond": lambda: [(0, -1), (0.68, 0), (0, 1), (-0.68, 0)],
    "hexagon": lambda: _regular(6, 0.0),
}


def _shape_mask(shape: str, n: int, scale: float, angle: float) -> np.ndarray:
    """Boolean mask (n x n) of ``shape`` centred, of radius ``scale`` pixels, tilted."""
    image = Image.new("L", (n, n), 0)
    draw = ImageDraw.Draw(image)
    c = n / 2

    def disc(x: float, y: float, r: float, value: int) -> None:
        draw.ellipse((c + x - r, c + y - r, c + x + r, c + y + r), fill=value)

    if shape == "circle":
        disc(0, 0, scale, 255)
    elif shape == "ring":
        disc(0, 0, scale, 255)
        disc(0, 0, 0.58 * scale, 0)
    elif shape == "crescent":
        disc(0, 0, scale, 255)
        dx, dy = _polygon([(0.45, -0.2)], angle)[0]
        disc(dx * scale, dy * scale, 0.85 * scale, 0)
    else:
        points = _polygon(_OUTLINES[shape](), angle)
        draw.polygon([(c + x * scale, c + y * scale) for x, y in points], fill=255)
    return np.asarray(image) > 127


def _erode(mask: np.ndarray, steps: int) -> np.ndarray:
    """Erosion by a (2*steps+1)-square: False outside the image."""
    out = mask.copy()
    for axis in (0, 1):
        source = out.copy()
        for s in range(1, steps + 1):
            lead = [slice(None)] * 2
            trail = [slice(None)] * 2
            lead[axis], trail[axis] = slice(s, None), slice(None, -s)
            out[tuple(lead)] &= source[tuple(trail)]
            out[tuple(trail)] &= source[tuple(lead)]
            edge = [slice(None)] * 2
            edge[axis] = slice(0, s)
            out[tuple(edge)] = False
            edge[axis] = slice(-s, None)
            out[tuple(edge)] = False
    return out


def _fill_mask(mask: np.ndarray, fill: str, scale: float, angle: float) -> np.ndarray:
    if fill == "solid":
        return mask
    if fill == "outlined":
        thickness = max(2 * _SUPERSAMPLE, round(0.16 * scale))
        return mask & ~_erode(mask, thickness)
    rim = mask & ~_erode(mask, max(_SUPERSAMPLE, round(0.07 * scale)))
    yy, xx = _grid(*mask.shape)
    if fill == "striped":
        period = max(3.0 * _SUPERSAMPLE, 0.36 * scale)
        along = xx * math.cos(angle) + yy * math.sin(angle)
        pattern = (along / period) % 1.0 < 0.5
    else:  # dotted
        spacing = max(4.0 * _SUPERSAMPLE, 0.5 * scale)
        dx = (xx % spacing) - spacing / 2
        dy = (yy % spacing) - spacing / 2
        pattern = dx * dx + dy * dy < (0.3 * spacing) ** 2
    return rim | (mask & pattern)


def _draw_object(
    canvas: np.ndarray, obj: SceneObject, x: float, y: float, radius: float, rng: random.Random
) -> None:
    angle = rng.uniform(-_ROTATION, _ROTATION)
    pattern_angle = rng.choice((0.0, math.pi / 4, math.pi / 2, 3 * math.pi / 4))
    k = int(2 * radius) + 4  # box side in output pixels
    scale = radius * _SUPERSAMPLE
    mask = _shape_mask(obj.shape, k * _SUPERSAMPLE, scale, angle)
    mask = _fill_mask(mask, obj.fill, scale, pattern_angle)
    alpha = mask.reshape(k, _SUPERSAMPLE, k, _SUPERSAMPLE).mean(axis=(1, 3), dtype=np.float32)
    _composite(canvas, alpha, round(x - k / 2), round(y - k / 2), _rgb(obj.colour))


def _composite(canvas: np.ndarray, alpha: np.ndarray, x0: int, y0: int, rgb: np.ndarray) -> None:
    height, width = canvas.shape[:2]
    k = alpha.shape[0]
    cx0, cy0 = max(x0, 0), max(y0, 0)
    cx1, cy1 = min(x0 + k, width), min(y0 + k, height)
    if cx0 >= cx1 or cy0 >= cy1:
        return
    a = alpha[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0, None]
    region = canvas[cy0:cy1, cx0:cx1]
    region += (rgb - region) * a


# --------------------------------------------------------------------------- styles


def _to_image(canvas: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(canvas + 0.5, 0, 255).astype(np.uint8), "RGB")


def _blur(canvas: np.ndarray, radius: float) -> np.ndarray:
    blurred = _to_image(canvas).filter(ImageFilter.GaussianBlur(radius))
    return np.asarray(blurred, dtype=np.float32)


def _smooth_noise(noise: np.random.Generator, height: int, width: int, cell: int) -> np.ndarray:
    """Low-frequency noise in [0, 1] (random values on a coarse grid, bicubic-upscaled)."""
    coarse = noise.random((height // cell + 2, width // cell + 2), dtype=np.float32)
    image = Image.fromarray(coarse, "F").resize((width, height), Image.Resampling.BICUBIC)
    return np.clip(np.asarray(image), 0, 1)


def _flat(canvas: np.ndarray, noise: np.random.Generator) -> np.ndarray:
    return canvas


def _pencil_sketch(canvas: np.ndarray, noise: np.random.Generator) -> np.ndarray:
    height, width = canvas.shape[:2]
    img = canvas / 255.0
    gx = np.abs(np.diff(img, axis=1, append=img[:, -1:])).sum(axis=2)
    gy = np.abs(np.diff(img, axis=0, append=img[-1:])).sum(axis=2)
    edges = np.clip((gx + gy) * 1.5, 0, 1)
    darkness = 1 - img @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    yy, xx = _grid(height, width)
    spacing = max(4, min(height, width) // 28)
    hatch = ((xx + yy) % spacing < 1) & (darkness > 0.25)
    cross = ((xx - yy) % spacing < 1) & (darkness > 0.55)
    jitter = noise.random((height, width), dtype=np.float32)
    graphite = np.maximum(edges, 0.55 * (hatch | cross)) * (0.75 + 0.25 * jitter)
    tint = 0.8 + 0.2 * img  # a faint coloured-pencil wash keeps colours guessable
    return _PAPER * (1 - 0.85 * graphite[..., None]) * tint


def _pixel_art(canvas: np.ndarray, noise: np.random.Generator) -> np.ndarray:
    """Big pixels (~24 across) that keep thin features, a 16-colour palette, nearest upscale."""
    height, width = canvas.shape[:2]
    block = max(2, round(min(height, width) / 24))
    rows, cols = max(1, height // block), max(1, width // block)
    blocks = canvas[: rows * block, : cols * block].reshape(rows, block, cols, block, 3)
    blocks = blocks.transpose(0, 2, 1, 3, 4).reshape(rows, cols, block * block, 3)
    # Each big pixel takes its block's most distinctive colour, so outlines and stripes survive.
    spread = ((blocks - blocks.mean(axis=2, keepdims=True)) ** 2).sum(axis=3)
    pick = spread.argmax(axis=2)[..., None, None]
    small = _to_image(np.take_along_axis(blocks, pick, axis=2)[:, :, 0])
    small = small.quantize(16, Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).convert("RGB")
    return np.asarray(small.resize((width, height), Image.Resampling.NEAREST), dtype=np.float32)


def _watercolour(canvas: np.ndarray, noise: np.random.Generator) -> np.ndarray:
    height, width = canvas.shape[:2]
    side = min(height, width)
    soft = _blur(canvas, 0.012 * side)
    heavy = _blur(canvas, 0.035 * side)
    pigment = 0.5 * soft + 0.5 * heavy
    pooled = np.clip(np.abs(soft - heavy).sum(axis=2) / 255 * 1.5, 0, 1)  # darker rims
    pigment *= 1 - 0.25 * pooled[..., None]
    blotches = _smooth_noise(noise, height, width, max(4, side // 10))
    washed = 255 - (255 - pigment) * (0.78 + 0.22 * blotches[..., None])
    grain = _smooth_noise(noise, height, width, 2) * 0.6 + 0.4 * noise.random(
        (height, width), dtype=np.float32
    )
    return washed * (0.9 + 0.1 * grain[..., None])


def _film_grain(canvas: np.ndarray, noise: np.random.Generator) -> np.ndarray:
    height, width = canvas.shape[:2]
    yy, xx = _grid(height, width)
    r2 = ((xx / width - 0.5) ** 2 + (yy / height - 0.5) ** 2) * 2
    vignette = 1 - 0.4 * r2
    grain = noise.normal(0, 18, (height, width, 1)).astype(np.float32)
    colour_grain = noise.normal(0, 5, (height, width, 3)).astype(np.float32)
    return canvas * vignette[..., None] + grain + colour_grain


def _blurred(canvas: np.ndarray, noise: np.random.Generator) -> np.ndarray:
    return _blur(canvas, 0.035 * min(canvas.shape[:2]))


_STYLES: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "flat": _flat,
    "pencil sketch": _pencil_sketch,
    "pixel art": _pixel_art,
    "watercolour": _watercolour,
    "film grain": _film_grain,
    "blurred": _blurred,
}
