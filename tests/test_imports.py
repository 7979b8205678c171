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


def leaving(tmp_path: Path, before: str) -> subprocess.CompletedProcess[str]:
    """``arpo runs show no-such-run`` (an error arpo understands: status 1) through ``main``,
    after ``before`` ran in the same process."""
    code = (
        f"{before}\n"
        "import sys\n"
        "from arpo.cli import main\n"
        "sys.argv = ['arpo', 'runs', 'show', 'no-such-run']\n"
        "main()\n"
        "print('main returned')\n"
    )
    return run([sys.executable, "-c", code], tmp_path)


def test_the_cli_ends_without_the_teardown_but_keeps_status_output_and_atexit(tmp_path):
    """The interpreter's teardown took 0.3-2.5 s after a command's last line (torch and
    transformers leave millions of objects): ``main`` ends the process once the command is
    done, with its exit status, its output flushed and the atexit handlers run."""
    marker = tmp_path / "atexit-ran"
    done = leaving(
        tmp_path,
        f"import atexit, pathlib\natexit.register(pathlib.Path({str(marker)!r}).touch)",
    )
    assert done.returncode == 1
    assert "no-such-run" in done.stderr
    assert "main returned" not in done.stdout
    assert marker.exists()


def test_the_cli_waits_for_a_thread_still_at_work(tmp_path):
    """A non-daemon thread still running when the command ends (a library's writer, say) is
    waited for, as a normal exit does, with the garbage collector frozen meanwhile."""
    marker = tmp_path / "thread-finished"
    work = (
        "import gc, pathlib, threading, time\n"
        "def work():\n"
        "    time.sleep(1.0)\n"
        f"    pathlib.Path({str(marker)!r}).write_text(str(gc.get_freeze_count() > 0))\n"
        "threading.Thread(target=work).start()"
    )
    done = leaving(tmp_path, work)
    assert done.returncode == 1
    assert marker.read_text() == "True"


def test_exit_status_follows_system_exit() -> None:
    from arpo.cli import _exit_status

    assert _exit_status(None) == 0
    assert _exit_status(3) == 3
    assert _exit_status("arpo: stopped") == 1


def test_the_cli_collects_garbage_less_often_but_still_collects(tmp_path):
    """The CLI raises the collector's thresholds (``arpo demo`` ran 0.6 s faster on average)
    and keeps it on: a command's garbage cycles are still freed."""
    code = (
        "import gc, sys, weakref\n"
        "from arpo.cli import COLLECTOR_THRESHOLDS, collect_less_often\n"
        "default = gc.get_threshold()\n"
        "collect_less_often()\n"
        "assert gc.isenabled() and gc.get_threshold() == COLLECTOR_THRESHOLDS != default\n"
        "class Node: pass\n"
        "first = Node(); first.me = first\n"
        "freed = []\n"
        "weakref.finalize(first, freed.append, True)\n"
        "del first\n"
        "for _ in range(3 * COLLECTOR_THRESHOLDS[0]):\n"
        "    node = Node(); node.me = node\n"
        "print(freed)\n"
    )
    done = run([sys.executable, "-c", code], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[True]"
