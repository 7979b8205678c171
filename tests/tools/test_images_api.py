"""The images-API renderer through its real HTTP client against the fake images server."""

from __future__ import annotations

import logging
import time

import pytest
from fake_images import FakeImages, Reply

from arpo.config import Settings
from arpo.demo.render import render_prompt
from arpo.errors import InvalidOptionError, RenderError
from arpo.tools.images_api import ImagesApiRenderer, build_images_renderer, nearest_size
from arpo.tools.store import ArtifactStore
from arpo.tools.t2i import RenderCache, RenderParams, RendersFailed, RendersRefused

PARAMS = RenderParams(steps=1, guidance=0.0, width=64, height=64)


@pytest.fixture
def server() -> FakeImages:
    with FakeImages() as fake:
        yield fake


def renderer(server: FakeImages, model: str = "demo", **options: object) -> ImagesApiRenderer:
    return ImagesApiRenderer(model, base_url=server.base_url, api_key="test", **options)  # type: ignore[arg-type]


def test_renders_one_image_per_prompt_at_the_size_asked(server: FakeImages) -> None:
    images = renderer(server).render(
        ["a large red solid circle in the center", "a blue square"], [0, 0], PARAMS
    )

    assert [image.size for image in images] == [(64, 64), (64, 64)]
    drawn = render_prompt("a large red solid circle in the center", 0, 64, 64)
    assert images[0].tobytes() == drawn.tobytes()  # the demo world's picture of it
    assert [r["size"] for r in server.requests] == ["64x64", "64x64"]
    assert all(r["response_format"] == "b64_json" and r["n"] == 1 for r in server.requests)


def test_a_known_model_gets_its_nearest_accepted_size_and_says_so(
    server: FakeImages, caplog: pytest.LogCaptureFixture
) -> None:
    server.sizes = ("1024x1024", "1792x1024", "1024x1792")
    dalle = renderer(server, "dall-e-3")
    wide = RenderParams(steps=1, guidance=0.0, width=1368, height=768)

    with caplog.at_level(logging.WARNING):
        image = dalle.render(["a red circle"], [0], wide)[0]

    assert image.size == (1792, 1024)
    assert server.requests[0]["size"] == "1792x1024"
    assert server.requests[0]["quality"] == "standard"
    assert "renders 1792x1024, not the 1368x768 asked for" in caplog.text
    assert dalle.price_per_image(wide) == pytest.approx(0.08)
    assert nearest_size((512, 512), [(1024, 1024), (1536, 1024)]) == (1024, 1024)


def test_gpt_image_1_is_asked_without_response_format_and_priced_by_quality(
    server: FakeImages,
) -> None:
    gpt = renderer(server, "gpt-image-1", quality="high")
    gpt.render(["a red circle"], [0], RenderParams(steps=1, guidance=0.0, width=512, height=512))

    assert "response_format" not in server.requests[0]
    assert server.requests[0]["quality"] == "high"
    assert gpt.price_per_image(PARAMS) == pytest.approx(0.167)
    with pytest.raises(InvalidOptionError, match=r"ARPO_T2I_QUALITY=hd .* low, medium, high"):
        renderer(server, "gpt-image-1", quality="hd")


def test_negative_prompts_steps_and_guidance_are_refused_not_dropped(server: FakeImages) -> None:
    backend = renderer(server)
    with pytest.raises(InvalidOptionError, match="no negative prompt"):
        backend.check_params(RenderParams(negative_prompt="blurry", steps=1, guidance=0.0))
    with pytest.raises(InvalidOptionError, match="no guidance; drop --guidance"):
        backend.check_params(RenderParams(steps=1, guidance=7.5))
    with pytest.raises(InvalidOptionError, match="no steps; drop --steps"):
        backend.check_params(RenderParams(steps=30, guidance=0.0))
    assert server.requests == []


def test_renders_of_one_call_go_out_in_parallel_up_to_the_limit() -> None:
    count, latency = 8, 0.3
    with FakeImages(latency_s=latency) as server:
        prompts = [f"a red circle number {i}" for i in range(count)]
        started = time.perf_counter()
        renderer(server, concurrency=4).render(prompts, [0] * count, PARAMS)
        elapsed = time.perf_counter() - started

    assert server.peak_in_flight == 4
    assert elapsed < 0.6 * count * latency  # 8 sequential would take 2.4 s; 4 at a time 0.6


def test_429_is_retried_after_the_time_retry_after_says(server: FakeImages) -> None:
    server.script(Reply.status(429, retry_after=0.4))
    started = time.perf_counter()
    image = renderer(server).render(["a red circle"], [0], PARAMS)[0]

    assert image.size == (64, 64)
    assert len(server.requests) == 2
    assert server.requests[1]["time"] - server.requests[0]["time"] >= 0.35
    assert time.perf_counter() - started < 3


def test_5xx_is_retried_and_gives_up_with_a_clear_error(server: FakeImages) -> None:
    server.script(Reply.status(500), Reply.status(503))
    assert renderer(server).render(["a red circle"], [0], PARAMS)[0].size == (64, 64)
    assert len(server.requests) == 3

    server.script(*[Reply.status(502)] * 3)
    with pytest.raises(RenderError, match="HTTP 502 3 times"):
        renderer(server, max_retries=2).render(["a red circle"], [0], PARAMS)


def test_a_refusal_is_not_retried_and_the_other_prompts_still_render(server: FakeImages) -> None:
    server.refuse = ("forbidden",)
    with pytest.raises(RendersRefused) as caught:
        renderer(server).render(
            ["a red circle", "a forbidden thing", "a blue square"], [0, 0, 0], PARAMS
        )

    error = caught.value
    assert set(error.reasons) == {1}
    assert "safety system" in error.reasons[1]
    assert error.images[0] is not None and error.images[1] is None and error.images[2] is not None
    assert len(server.requests) == 3  # the refused prompt was sent once


def test_the_render_cache_keeps_a_refusal_and_does_not_send_it_again(
    server: FakeImages, tmp_path
) -> None:
    server.refuse = ("forbidden",)
    cache = RenderCache(renderer(server), ArtifactStore(tmp_path))
    outcome = cache.render_some(["a red circle", "a forbidden thing"], [0, 0], PARAMS)

    assert outcome.hashes[0] is not None and outcome.hashes[1] is None
    assert outcome.spent == 1 and set(outcome.refused) == {1}
    again = cache.render_some(["a red circle", "a forbidden thing"], [0, 0], PARAMS)
    assert again.spent == 0 and again.hashes == outcome.hashes and len(server.requests) == 2
    assert cache.missing(["a forbidden thing"], [0], PARAMS) == 0
    with pytest.raises(RendersRefused, match="refused 1 prompt"):
        cache.render_counted(["a forbidden thing"], [0], PARAMS)


def test_seeds_name_samples_a_new_seed_is_a_new_draw(server: FakeImages, tmp_path) -> None:
    cache = RenderCache(renderer(server), ArtifactStore(tmp_path))
    first = cache.render(["a red circle"], [0], PARAMS)
    assert cache.render(["a red circle"], [0], PARAMS) == first  # sample 0 again: cached
    assert len(server.requests) == 1
    cache.render(["a red circle"], [1], PARAMS)
    assert len(server.requests) == 2
    assert '"sample": 0' in cache.key("a red circle", 0, PARAMS)


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (Reply("malformed"), "not a whole image"),
        (Reply("truncated"), "malformed or truncated"),
        (Reply("not_base64"), "not base64"),
    ],
)
def test_broken_image_bytes_are_a_clear_error(
    server: FakeImages, reply: Reply, message: str
) -> None:
    server.script(reply)
    with pytest.raises(RenderError, match=message):
        renderer(server).render(["a red circle"], [0], PARAMS)


def test_a_timeout_is_a_clear_error_naming_the_setting(server: FakeImages) -> None:
    server.script(Reply.stall(3.0))
    started = time.perf_counter()
    with pytest.raises(RenderError, match=r"within 0.5 s.*ARPO_T2I_TIMEOUT_S"):
        renderer(server, timeout_s=0.5).render(["a red circle"], [0], PARAMS)
    assert time.perf_counter() - started < 2.5


def test_a_batch_whose_one_render_times_out_keeps_the_other_renders(
    server: FakeImages, tmp_path
) -> None:
    prompts = ["a red circle", "a blue square", "a green star", "a yellow triangle"]
    server.script(Reply.stall(30.0))  # whichever request comes first hangs past the timeout
    cache = RenderCache(renderer(server, timeout_s=0.5), ArtifactStore(tmp_path))

    with pytest.raises(RendersFailed, match=r"within 0.5 s.*3 of 4 renders were made") as caught:
        cache.render_some(prompts, [0] * 4, PARAMS)

    assert caught.value.spent == 3  # paid for: counted, and in the cache
    assert cache.missing(prompts, [0] * 4, PARAMS) == 1
    again = cache.render_some(prompts, [0] * 4, PARAMS)
    assert again.spent == 1 and all(again.hashes)
    assert len(server.requests) == 5  # 4, then only the one that timed out


def test_after_a_failure_requests_not_yet_sent_are_not_sent(server: FakeImages) -> None:
    server.script(Reply.ok(), Reply.status(500))
    prompts = ["a red circle", "a blue square", "a green star", "a white moon"]
    with pytest.raises(RendersFailed, match="HTTP 500 1 times") as caught:
        renderer(server, concurrency=1, max_retries=0).render(prompts, [0] * 4, PARAMS)

    made = caught.value.images
    assert made[0] is not None and made[1] is None and made[3] is None
    assert "a white moon" not in [request["prompt"] for request in server.requests]


def test_other_4xx_answers_say_what_to_check(server: FakeImages) -> None:
    server.sizes = ("1024x1024",)
    with pytest.raises(RenderError, match=r"HTTP 400: Invalid size .64x64.*check ARPO_T2I_MODEL"):
        renderer(server).render(["a red circle"], [0], PARAMS)


def test_openai_without_a_key_is_refused_before_any_request(monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(InvalidOptionError, match="ARPO_T2I_API_KEY"):
        build_images_renderer("openai-images:gpt-image-1", Settings())
    with pytest.raises(InvalidOptionError, match="openai-images:MODEL"):
        build_images_renderer("openai-images:", Settings())
