"""Importing arpo (and starting the CLI) stays light: no torch, diffusers, CLIP or LLM client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HEAVY = ("torch", "diffusers", "transformers", "open_clip", "langchain_openai", "openai")


def run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARPO_")}
    env["ARPO_HOME"] = str(tmp_path / "home")
    return subprocess.run(args, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)


def test_importing_arpo_loads_no_heavy_modules(tmp_path):
    code = (
        "import json, sys\n"
        "import arpo, arpo.cli, arpo.api, arpo.config, arpo.errors\n"
        "arpo.Settings\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    done = run([sys.executable, "-c", code], tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_lazy_attributes_resolve(tmp_path):
    code = (
        "import arpo\n"
        "import arpo.api\nassert arpo.reverse_prompt is arpo.api.reverse_prompt\n"
        "assert arpo.Toolbox.__name__ == 'Toolbox'\n"
        "try:\n"
        "    arpo.no_such_thing\n"
        "except AttributeError as error:\n"
        "    print('missing:', error)\n"
    )
    done = run([sys.executable, "-c", code], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "has no attribute 'no_such_thing'" in done.stdout


def test_arpo_help_exits_0(tmp_path):
    script = Path(sys.executable).with_name("arpo")
    done = run([str(script), "--help"], tmp_path)
    assert done.returncode == 0, done.stderr
    for command in ("invert", "generate", "score"):
        assert command in done.stdout
    assert not (tmp_path / "home").exists()  # --help writes nothing


def test_the_cli_freezes_the_garbage_collector_on_its_way_out(tmp_path):
    """What the imports made is left out of the collections of the interpreter's exit (they
    took 1.5-2.5 s after a command's last line): ``main`` freezes it, however the command
    ends."""
    code = (
        "import gc, sys\n"
        "from arpo.cli import main\n"
        "sys.argv = ['arpo', 'runs', 'show', 'no-such-run']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as done:\n"
        "    print(done.code, gc.get_freeze_count() > 0)\n"
    )
    done = run([sys.executable, "-c", code], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "True"]
