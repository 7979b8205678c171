"""How fast arpo starts and how soon it says something, in fresh processes, against targets.

Measures, each command in a new process on the demo preset (offline, CPU), with a data folder
that an earlier process already used (the vocabulary's embeddings are cached, the preset is
built: "a second process"):
  * the time to the first visible output for every command that loads models (read through
    a pseudo-terminal, as a person at a terminal sees it; target: under 1 s);
  * ``arpo demo`` from start to exit (target: under 8 s), and from its last line to exit
    (target: under 0.5 s);
  * ``arpo serve`` answering ``list_tools`` over stdio, from spawn (target: under 1.5 s);
  * the first progress notification of a first ``reverse_prompt`` on a server started with
    ``--no-warm-up`` (target: under 1 s), and a warm ``reverse_prompt``: the second call in
    the same server (target: under 3 s).

    python benchmarks/startup.py [--repeat 3] [--home DIR]

Prints one table row per measurement (the median of --repeat tries): measured, target, pass
or fail. Exit code 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import re
import select
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ARPO = str(Path(sys.executable).with_name("arpo"))
ANSI = re.compile(rb"\x1b(\[[0-9;?]*[ -/]*[@-~]|\][^\x07]*\x07|[@-Z\\-_])")
FIRST_OUTPUT_TARGET_S = 1.0
DEMO_TOTAL_TARGET_S = 8.0
DEMO_EXIT_TARGET_S = 0.5
LIST_TOOLS_TARGET_S = 1.5
FIRST_PROGRESS_TARGET_S = 1.0
WARM_REVERSE_TARGET_S = 3.0


@dataclass
class Row:
    what: str
    seconds: float
    target: float

    @property
    def passed(self) -> bool:
        return self.seconds < self.target


@dataclass
class Timing:
    first_output: float  # seconds from spawn to the first visible character
    last_output: float  # seconds from spawn to the last visible character
    total: float  # seconds from spawn to exit
    first_line: str


def timed_in_terminal(args: list[str], env: dict[str, str], cwd: Path) -> Timing:
    """Run ``arpo ARGS`` on a pseudo-terminal (stdout and stderr both), like a person at a
    terminal: when its first visible character arrives, and when it exits."""
    import pty

    leader, follower = pty.openpty()
    start = time.perf_counter()
    process = subprocess.Popen(
        [ARPO, *args], stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, env=env,
        cwd=cwd,
    )  # fmt: skip
    os.close(follower)
    seen = bytearray()
    first: float | None = None
    last = 0.0
    while True:
        ready, _, _ = select.select([leader], [], [], 0.05)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: the process is gone
                chunk = b""
            if not chunk:
                break
            seen += chunk
            if ANSI.sub(b"", chunk).strip():
                last = time.perf_counter() - start
                first = last if first is None else first
        elif process.poll() is not None:
            break
    code = process.wait()
    total = time.perf_counter() - start
    os.close(leader)
    text = ANSI.sub(b"", bytes(seen)).decode(errors="replace")
    if code != 0:
        raise SystemExit(f"arpo {' '.join(args)} failed ({code}):\n{text}")
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    return Timing(first or total, last, total, line)


def median_of(repeat: int, measure: Callable[[], float]) -> float:
    return statistics.median(measure() for _ in range(repeat))


def demo_image(env: dict[str, str], path: Path, index: int) -> Path:
    """Held-out demo scene ``index`` saved at ``path``."""
    subprocess.run(
        [sys.executable, "-c", "import sys; from arpo.demo.evaluate import heldout_scene, "
         "render_scene; i = int(sys.argv[2]); render_scene(heldout_scene(i, 1), i)"
         ".save(sys.argv[1])", str(path), str(index)],
        env=env, check=True,
    )  # fmt: skip
    return path


def prepare(home: Path) -> tuple[dict[str, str], Path]:
    """The environment of every process, and a demo-world reference image in the server's
    default image folder (ARPO_HOME/inbox); one warm-up demo run fills the caches."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARPO_")}
    env.update({"ARPO_HOME": str(home), "HF_HUB_OFFLINE": "1", "COLUMNS": "120"})
    if env.get("PYTHONPATH"):  # the processes run elsewhere: the sources named as given here
        parts = env["PYTHONPATH"].split(os.pathsep)
        env["PYTHONPATH"] = os.pathsep.join(str(Path(part).resolve()) for part in parts)
    inbox = home / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    image = demo_image(env, inbox / "scene.png", 7)
    started = time.perf_counter()
    timed_in_terminal(["demo", "--scene", "1"], env, home)
    seconds = time.perf_counter() - started
    print(f"(the first arpo demo in the fresh data folder {home}: {seconds:.1f} s)")
    return env, image


def command_rows(env: dict[str, str], image: Path, work: Path, repeat: int) -> list[Row]:
    commands: dict[str, list[str]] = {
        "demo": ["demo", "--scene", "3"],
        "invert": ["invert", str(image), "--preset", "demo", "-n", "2"],
        "score": ["score", str(image), "a red circle", "a blue square", "--preset", "demo"],
        "generate": ["generate", "a red circle", "--preset", "demo", "-o", str(work),
                     "--overwrite"],
        "edit": ["edit", "a red circle", "--set", "palette=blue", "--no-llm", "--preset", "demo"],
        "vary": ["vary", "a red circle", "--count", "2", "--preset", "demo"],
        "fuse": ["fuse", "a red circle", "a blue square, watercolour", "--no-llm", "--preset",
                 "demo"],
        "bench": ["bench", "demo:1", "--methods", "caption", "-o", str(work / "bench")],
    }  # fmt: skip
    rows: list[Row] = []
    demo_totals: list[float] = []
    demo_tails: list[float] = []
    for name, args in commands.items():
        firsts = []
        for _ in range(repeat):
            if name == "bench":
                subprocess.run(["rm", "-rf", str(work / "bench")], check=True)
            timing = timed_in_terminal(args, env, work)
            firsts.append(timing.first_output)
            if name == "demo":
                demo_totals.append(timing.total)
                demo_tails.append(timing.total - timing.last_output)
        print(f"  arpo {name}: first line {timing.first_line[:70]!r}", flush=True)
        rows.append(Row(f"arpo {name}: first output (s)", statistics.median(firsts),
                        FIRST_OUTPUT_TARGET_S))  # fmt: skip
    rows.insert(1, Row("arpo demo: total, second process (s)", statistics.median(demo_totals),
                       DEMO_TOTAL_TARGET_S))  # fmt: skip
    rows.insert(2, Row("arpo demo: exit after its last line (s)", statistics.median(demo_tails),
                       DEMO_EXIT_TARGET_S))  # fmt: skip
    return rows


def server_rows(env: dict[str, str], image: Path, work: Path, repeat: int) -> list[Row]:
    import anyio
    from mcp import Client, StdioServerParameters
    from mcp.client.stdio import stdio_client

    def params(*extra: str) -> StdioServerParameters:
        return StdioServerParameters(
            command=ARPO, args=["serve", "--preset", "demo", *extra], env=env, cwd=str(work)
        )

    async def list_tools() -> float:
        with (work / "serve.log").open("w") as errlog:
            start = time.perf_counter()
            async with Client(stdio_client(params(), errlog=errlog)) as client:
                tools = await client.list_tools()
                seconds = time.perf_counter() - start
                assert tools.tools
        return seconds

    async def reverse_prompt(other: Path) -> tuple[float, float]:
        """The first call's first progress, and a second call's time on ``other``, an image
        no call has seen (the same image again would be answered from the render cache)."""
        arrived: list[float] = []
        messages: list[str] = []

        async def progress(value: float, total: float | None, message: str | None) -> None:
            arrived.append(time.perf_counter())
            messages.append(message or "")

        arguments: dict[str, Any] = {"image": str(image)}
        with (work / "serve.log").open("w") as errlog:
            async with Client(stdio_client(params("--no-warm-up"), errlog=errlog)) as client:
                called = time.perf_counter()
                first = await client.call_tool(
                    "reverse_prompt", arguments, progress_callback=progress
                )
                assert not first.is_error, first.content
                first_progress = (arrived[0] if arrived else time.perf_counter()) - called
                print(f"  reverse_prompt: first progress {messages[:1]}", flush=True)
                called = time.perf_counter()
                second = await client.call_tool("reverse_prompt", {"image": str(other)})
                warm = time.perf_counter() - called
                assert not second.is_error, second.content
        return first_progress, warm

    listed = median_of(repeat, lambda: anyio.run(list_tools))
    others = [demo_image(env, image.with_name(f"other-{i}.png"), 100 + i) for i in range(repeat)]
    calls = [anyio.run(reverse_prompt, other) for other in others]
    return [
        Row("arpo serve: list_tools answered (s)", listed, LIST_TOOLS_TARGET_S),
        Row("MCP reverse_prompt: first progress, cold (s)",
            statistics.median(c[0] for c in calls), FIRST_PROGRESS_TARGET_S),
        Row("MCP reverse_prompt: warm, second call, a new image (s)",
            statistics.median(c[1] for c in calls), WARM_REVERSE_TARGET_S),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3, help="tries per measurement (median)")
    parser.add_argument("--home", type=Path, help="ARPO_HOME to use (default: a fresh one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="arpo-startup-") as scratch:
        home = args.home or Path(scratch) / "home"
        work = Path(scratch) / "work"
        work.mkdir()
        env, image = prepare(home)
        rows = command_rows(env, image, work, args.repeat)
        rows += server_rows(env, image, work, args.repeat)
    print(f"\nmedian of {args.repeat}, {os.cpu_count()} CPUs")
    print("| measurement | measured | target | ratio | |\n| --- | --- | --- | --- | --- |")
    for row in rows:
        verdict = "pass" if row.passed else "FAIL"
        print(f"| {row.what} | {row.seconds:.2f} | < {row.target:g} | "
              f"{row.seconds / row.target:.2f} | {verdict} |")  # fmt: skip
    sys.exit(0 if all(row.passed for row in rows) else 1)


if __name__ == "__main__":
    main()
