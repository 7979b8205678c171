"""A Toolbox says what it loads as it happens: "loading X" before the model loads (before
torch is imported, in a fresh process), "loaded X in N s" after; to the listeners of the
context that loads and to the process's, never to another thread's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from arpo.config import Settings
from arpo.errors import ArpoError
from arpo.tools.toolbox import Toolbox, listen_to_every_toolbox


def test_the_demo_preset_says_what_loads_before_and_after_each_model(tmp_path: Path) -> None:
    toolbox = Toolbox(Settings(home=tmp_path / "home", preset="demo"))
    heard: list[str] = []
    with toolbox.listen(heard.append):
        toolbox.load_models()
    toolbox.load_models(on_progress=heard.append)  # loaded already: nothing more to say

    topics = [message.split(" in ")[0] for message in heard]
    assert topics == [
        "preparing the demo preset",
        "checking the model files",
        "loading CLIP demo-clip",
        "loaded CLIP demo-clip",
        "loading text-to-image model arpo-demo-renderer-v2",
        "loaded text-to-image model arpo-demo-renderer-v2",
        "loading captioner demo/captioner",
        "loaded captioner demo/captioner",
    ]
    assert heard[3].endswith(" s") and float(heard[3].split(" in ")[1].removesuffix(" s")) >= 0


def test_a_model_that_fails_to_load_is_said_loading_never_loaded(tmp_path: Path) -> None:
    toolbox = Toolbox(Settings(home=tmp_path / "home", t2i_model=str(tmp_path / "no-model")))
    heard: list[str] = []
    with toolbox.listen(heard.append), pytest.raises(ArpoError):
        toolbox.backend  # noqa: B018
    assert heard == ["loading text-to-image model no-model"]


def test_listeners_hear_their_own_contexts_loads_and_the_process_listener_every_one(
    tmp_path: Path,
) -> None:
    toolbox = Toolbox(Settings(home=tmp_path / "home", preset="demo"))
    mine: list[str] = []
    everyone: list[str] = []

    def elsewhere() -> None:
        toolbox.scorer  # noqa: B018 - loaded in another thread

    with listen_to_every_toolbox(everyone.append), toolbox.listen(mine.append):
        worker = threading.Thread(target=elsewhere)
        worker.start()
        worker.join()
        toolbox.vocabulary  # noqa: B018 - no model: says nothing
    toolbox.backend  # noqa: B018 - after the listeners left
    assert mine == []
    assert [m.split(" in ")[0] for m in everyone] == [
        "loading CLIP demo-clip",
        "loaded CLIP demo-clip",
    ]


def test_a_fresh_arpo_demo_says_loading_clip_before_importing_torch(tmp_path: Path) -> None:
    """The CLI's first lines come before the heavy imports: in a new process, the listener is
    told "loading CLIP" while torch and open_clip are not imported yet."""
    code = (
        "import json, sys\n"
        "from arpo.cli import app\n"
        "from arpo.tools.toolbox import listen_to_every_toolbox\n"
        "said = []\n"
        "heavy = lambda: [m for m in ('torch', 'open_clip', 'langgraph') if m in sys.modules]\n"
        "with listen_to_every_toolbox(lambda m: said.append([m, heavy()])):\n"
        "    try:\n"
        "        app(['demo', '--scene', '1', '-n', '1'])\n"
        "    except SystemExit as done:\n"
        "        assert not done.code, done.code\n"
        "print(json.dumps(said))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARPO_")}
    env.update({"ARPO_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"})
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    said = dict(json.loads(done.stdout.splitlines()[-1]))
    assert list(said)[:2] == ["checking the model files", "loading CLIP demo-clip"]
    assert said["loading CLIP demo-clip"] == []  # said before torch was imported
    assert "torch" in next(v for m, v in said.items() if m.startswith("loaded CLIP"))
    # and the CLI printed the same lines on stderr, in that order
    lines = [line.strip() for line in done.stderr.splitlines()]
    assert lines.index("checking the model files") < lines.index("loading CLIP demo-clip")
    assert "loading captioner demo/captioner" in lines
    assert not any(line.startswith("loaded ") for line in lines)  # only with --verbose


def test_a_slow_first_preset_build_is_announced(tmp_path, monkeypatch):
    """A tiny preset's first use builds models for seconds: the listener hears it while it
    builds; preparing a preset that is quick says nothing."""
    import time

    import arpo.tools.presets as presets

    heard: list[str] = []

    def slow_prepare(name, presets_dir):
        time.sleep(0.8)
        heard.append("built")
        return real_prepare(name, presets_dir)

    real_prepare = presets.prepare_preset
    monkeypatch.setattr(presets, "prepare_preset", slow_prepare)
    toolbox = Toolbox(Settings(home=tmp_path, preset="demo"))
    with toolbox.listen(heard.append):
        assert toolbox.preset is not None
    assert heard[0] == "building the demo preset's models (once per data folder)"
    assert heard[1] == "built"

    monkeypatch.setattr(presets, "prepare_preset", real_prepare)
    quick = Toolbox(Settings(home=tmp_path, preset="demo"))
    quiet: list[str] = []
    with quick.listen(quiet.append):
        assert quick.preset is not None
    assert quiet == []
