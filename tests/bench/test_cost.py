"""Cost metering: stage time counted once, real renders only."""

from __future__ import annotations

import time

from arpo.bench.cost import StageMeter, metered_toolbox
from arpo.tools.t2i import RenderParams
from arpo.tools.toolbox import Toolbox


def test_nested_stages_count_once() -> None:
    meter = StageMeter()
    with meter.stage("score"):
        with meter.stage("score"):
            time.sleep(0.01)
        time.sleep(0.01)
    assert 0.02 <= meter.seconds["score"] < 0.2
    assert meter.seconds["render"] == 0.0


def test_metered_toolbox_counts_real_renders_and_times_scoring(demo_toolbox: Toolbox) -> None:
    meter = StageMeter()
    tools = metered_toolbox(demo_toolbox, meter)
    params = RenderParams(steps=1, guidance=0.0, width=128, height=128)
    first = tools.renderer.render(["a red circle", "a blue star"], [0, 0], params)
    again = tools.renderer.render(["a red circle"], [0], params)  # a cache hit: not a render
    assert again == first[:1]
    assert meter.renders == 2
    assert meter.seconds["render"] > 0
    tools.scorer.text_similarity(["a red circle"], tools.scorer.encode_texts(["x"])[0])
    assert meter.seconds["score"] > 0
    # another metered toolbox does not get this one's renders from the cache
    other = StageMeter()
    metered_toolbox(demo_toolbox, other).renderer.render(["a red circle"], [0], params)
    assert other.renders == 1


def test_a_metered_toolbox_shares_the_loaded_captioner(demo_toolbox: Toolbox) -> None:
    """Each bench task gets a metered toolbox: the captioner is loaded once, not per task."""
    assert demo_toolbox.captioner is not None
    metered = metered_toolbox(demo_toolbox, StageMeter())
    assert metered.captioner is demo_toolbox.captioner
