"""The demo renderer draws what prompts say, deterministically and in every style."""

from __future__ import annotations

import random
from collections import deque
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from arpo.demo import DEMO_RENDER_PARAMS, DemoRenderer, draw_scene, sample_scene
from arpo.demo.world import COLOURS, STYLES
from arpo.tools.t2i import RenderParams

RENDERER = DemoRenderer()


def render(prompt: str, seed: int = 0, params: RenderParams = DEMO_RENDER_PARAMS) -> np.ndarray:
    image = RENDERER.render([prompt], [seed], params)[0]
    assert image.mode == "RGB"
    return np.asarray(image).astype(int)


def near(pixel: np.ndarray, colour: str, tolerance: int = 40) -> bool:
    return bool(np.abs(pixel - np.array(COLOURS[colour])).max() <= tolerance)


def components(mask: np.ndarray) -> int:
    """Number of 4-connected True regions."""
    seen = np.zeros_like(mask)
    count = 0
    for start in zip(*np.nonzero(mask), strict=True):
        if seen[start]:
            continue
        count += 1
        queue = deque([start])
        seen[start] = True
        while queue:
            y, x = queue.popleft()
            for ny, nx in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):
                inside = 0 <= ny < mask.shape[0] and 0 <= nx < mask.shape[1]
                if inside and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    queue.append((ny, nx))
    return count


def test_renderer_identity_and_params() -> None:
    assert RENDERER.name.startswith("arpo-demo-renderer-v")
    with pytest.raises(ValueError):
        RENDERER.render(["a star"], [0, 1], DEMO_RENDER_PARAMS)
    assert RENDERER.render([], [], DEMO_RENDER_PARAMS) == []


def test_deterministic_per_prompt_and_seed() -> None:
    assert np.array_equal(render("a star", 3), render("a star", 3))
    assert not np.array_equal(render("a star", 3), render("a star", 4))
    # Steps, guidance and the negative prompt are ignored.
    other = RenderParams(negative_prompt="blue", steps=50, guidance=1.0, width=128, height=128)
    assert np.array_equal(render("a star", 3), render("a star", 3, other))


def test_draws_a_red_circle_in_the_center() -> None:
    for seed in range(4):
        pixels = render("a large red solid circle in the center on a white background, flat", seed)
        assert near(pixels[64, 64], "red", 10)
        for corner in (pixels[0, 0], pixels[0, -1], pixels[-1, 0], pixels[-1, -1]):
            assert near(corner, "white", 5)


def test_position_top_left() -> None:
    for seed in range(4):
        pixels = render("a blue solid square in the top left on a black background", seed)
        anchor = pixels[24:33, 24:33].reshape(-1, 3)
        assert all(near(p, "blue", 10) for p in anchor)
        assert pixels[:48, :48, 2].mean() > pixels[:48, :48, 0].mean() + 15
        assert all(near(p, "black", 5) for p in pixels[80:, 80:].reshape(-1, 3))


def test_counts_are_drawn() -> None:
    for seed in range(3):
        pixels = render("three small yellow solid circles on a black background", seed)
        yellow = np.abs(pixels - np.array(COLOURS["yellow"])).max(axis=2) < 60
        assert components(yellow) == 3


def test_sizes() -> None:
    areas = {}
    for size in ("small", "medium", "large"):
        pixels = render(f"a {size} green solid square on a white background, flat")
        areas[size] = (np.abs(pixels - np.array(COLOURS["green"])).max(axis=2) < 60).mean()
    assert areas["small"] < areas["medium"] < areas["large"]
    assert 0.01 < areas["small"] < 0.04 and 0.08 < areas["large"] < 0.16


@pytest.mark.parametrize("size", [(64, 64), (128, 128), (136, 96), (8, 16)])
def test_any_multiple_of_8(size: tuple[int, int]) -> None:
    params = RenderParams(steps=1, width=size[0], height=size[1])
    for style in STYLES:
        image = RENDERER.render([f"two striped stars and a hollow ring, {style}"], [1], params)[0]
        assert image.size == size


def test_unknown_words_still_render() -> None:
    pixels = render("zxqv blorp, a photograph of nothing in particular")
    assert pixels.shape == (128, 128, 3)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 1  # some object was drawn


def test_every_style_changes_the_image() -> None:
    scene = replace(sample_scene(random.Random(5), n_objects=2), style="flat")
    flat = np.asarray(draw_scene(scene, 128, 128, random.Random(0))).astype(int)
    for style in STYLES[1:]:
        styled = draw_scene(replace(scene, style=style), 128, 128, random.Random(0))
        assert isinstance(styled, Image.Image) and styled.size == (128, 128)
        assert np.abs(np.asarray(styled).astype(int) - flat).mean() > 1, style


def test_fills_differ() -> None:
    base = "a large {} pink heart in the center on a white background, flat"
    images = [render(base.format(fill)) for fill in ("solid", "outlined", "striped", "dotted")]
    amounts = [(np.abs(i - np.array(COLOURS["pink"])).max(axis=2) < 40).mean() for i in images]
    assert amounts[0] == max(amounts) and len(set(amounts)) == 4
