"""Dependencies point one way: tools <- graph <- api <- (server, cli, langgraph_server); demo
and bench build on tools and api, never the reverse.

Every module under src/arpo is parsed and each static import (``import x``, ``from x import
y``, relative ones, and those inside functions or under ``TYPE_CHECKING``) is checked against
the rules below.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import arpo

# package -> packages it must not import
MUST_NOT_IMPORT: dict[str, tuple[str, ...]] = {
    "arpo.tools": (
        "arpo.demo",
        "arpo.graph",
        "arpo.api",
        "arpo.server",
        "arpo.cli",
        "arpo.bench",
        "arpo.remix",
    ),
    "arpo.graph": ("arpo.api", "arpo.cli", "arpo.server", "arpo.bench", "arpo.demo"),
    "arpo.remix": ("arpo.graph", "arpo.api", "arpo.server", "arpo.cli"),
    "arpo.api": ("arpo.demo", "arpo.bench", "arpo.server", "arpo.cli"),
    "arpo.report": (
        "arpo.api",
        "arpo.graph",
        "arpo.server",
        "arpo.cli",
        "arpo.demo",
        "arpo.bench",
        "arpo.remix",
    ),
}
# package -> the only packages that may import it
ONLY_IMPORTED_BY: dict[str, tuple[str, ...]] = {
    "arpo.cli": ("arpo.cli",),
    "arpo.server": ("arpo.server", "arpo.cli"),
    "arpo.langgraph_server": ("arpo.langgraph_server",),  # a face: only langgraph.json uses it
}
# a rule may name a layer that spans several packages (none today)
LAYERS: dict[str, tuple[str, ...]] = {}

# (importing module, imported module) pairs that break a rule and are not fixed yet. A new
# violation fails the test; remove an entry once its import is gone.
KNOWN_VIOLATIONS: set[tuple[str, str]] = set()

SRC = Path(arpo.__file__).resolve().parent


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def expand(packages: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(member for package in packages for member in LAYERS.get(package, (package,)))


def module_name(path: Path, root: Path = SRC) -> tuple[str, bool]:
    """The dotted name of a source file, and whether it is a package's ``__init__``."""
    parts = (root.name, *path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def imports_of(path: Path, root: Path = SRC) -> list[tuple[int, str, tuple[str, ...]]]:
    """Every static import of a file: (line, module, names a ``from`` import takes from it)."""
    module, is_package = module_name(path, root)
    package = module if is_package else module.rpartition(".")[0]
    found: list[tuple[int, str, tuple[str, ...]]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name, ()) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            source = node.module or ""
            if node.level:
                parts = package.split(".")
                base = parts[: len(parts) - (node.level - 1)]
                source = ".".join([*base, source] if source else base)
            found.append((node.lineno, source, tuple(alias.name for alias in node.names)))
    return found


def broken_rule(importer: str, imported: str) -> str | None:
    for package, forbidden in MUST_NOT_IMPORT.items():
        if within(importer, package):
            for target in expand(forbidden):
                if within(imported, target) and not within(importer, target):
                    return f"{package} must not import {target}"
    for target, allowed in ONLY_IMPORTED_BY.items():
        if within(imported, target) and not any(within(importer, a) for a in allowed):
            return f"only {', '.join(allowed)} may import {target}"
    return None


def violations(root: Path = SRC) -> dict[tuple[str, str], str]:
    found: dict[tuple[str, str], str] = {}
    for path in sorted(root.rglob("*.py")):
        importer, _ = module_name(path, root)
        for line, source, names in imports_of(path, root):
            # ``from arpo import api`` imports the module arpo.api; ``from arpo.demo.render
            # import DemoRenderer`` is reported once, as arpo.demo.render
            imported = [source] if broken_rule(importer, source) else []
            imported = imported or [f"{source}.{name}" for name in names]
            for target in imported:
                rule = broken_rule(importer, target)
                if rule:
                    where = f"{path.relative_to(root.parent)}:{line}"
                    message = f"{where}: {importer} imports {target} ({rule})"
                    found.setdefault((importer, target), message)
    return found


def test_scan_sees_every_kind_of_import(tmp_path):
    root = tmp_path / "arpo"
    (root / "tools" / "presets").mkdir(parents=True)
    (root / "tools" / "__init__.py").write_text("")
    (root / "tools" / "presets" / "__init__.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "from arpo.tools import t2i\n"  # allowed
        "if TYPE_CHECKING:\n"
        "    from ...graph import state\n"  # relative, under TYPE_CHECKING
        "def build():\n"
        "    from arpo.demo.render import DemoRenderer\n"  # inside a function
        "    import arpo.bench.methods\n"
        "    from arpo import cli, api\n"  # modules named as from-imports
        "    from . import demo\n"  # arpo.tools.presets.demo: inside tools, allowed
    )
    (root / "graph.py").write_text("from .server import app\n")
    found = violations(root)
    assert sorted(found) == [
        ("arpo.graph", "arpo.server"),
        ("arpo.tools.presets", "arpo.api"),
        ("arpo.tools.presets", "arpo.bench.methods"),
        ("arpo.tools.presets", "arpo.cli"),
        ("arpo.tools.presets", "arpo.demo.render"),
        ("arpo.tools.presets", "arpo.graph"),
    ]
    assert found[("arpo.tools.presets", "arpo.demo.render")] == (
        "arpo/tools/presets/__init__.py:6: arpo.tools.presets imports arpo.demo.render "
        "(arpo.tools must not import arpo.demo)"
    )
    assert "graph.py:1" in found[("arpo.graph", "arpo.server")]


def test_rules():
    assert broken_rule("arpo.remix.edit", "arpo.api") == "arpo.remix must not import arpo.api"
    assert broken_rule("arpo.bench.runner", "arpo.cli") == "only arpo.cli may import arpo.cli"
    assert broken_rule("arpo.api.runs", "arpo.server") is not None
    assert (
        broken_rule("arpo.bench.runner", "arpo.server")
        == "only arpo.server, arpo.cli may import arpo.server"
    )
    assert broken_rule("arpo.report.run", "arpo.graph") == "arpo.report must not import arpo.graph"
    assert broken_rule("arpo.demo.run", "arpo.api") is None
    assert broken_rule("arpo.cli", "arpo.server") is None
    assert broken_rule("arpo.graph.nodes", "arpo.tools.toolbox") is None
    assert broken_rule("arpo.demo.preset", "arpo.tools.registry") is None


def test_dependencies_point_one_way():
    assert (SRC / "tools" / "toolbox.py").is_file()  # the scan reads the arpo under test
    new = {pair: message for pair, message in violations().items() if pair not in KNOWN_VIOLATIONS}
    assert not new, "imports against the layering:\n" + "\n".join(sorted(new.values()))


def test_tools_build_the_demo_preset_without_importing_the_demo_world(tmp_path):
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "import arpo.tools.toolbox, arpo.tools.presets, arpo.tools.registry\n"
        "demo = [m for m in sys.modules if m == 'arpo.demo' or m.startswith('arpo.demo.')]\n"
        "before = sorted(demo)\n"
        "from arpo.config import Settings\n"
        "from arpo.tools.presets import PresetModels, prepare_preset\n"
        "from arpo.tools.toolbox import Toolbox\n"
        "models = prepare_preset('demo', Path(sys.argv[1]) / 'presets')\n"
        "backend = Toolbox(Settings(home=sys.argv[1], preset='demo')).backend\n"
        "print(json.dumps({'before': before, 'models': isinstance(models, PresetModels),\n"
        "    'renderer': models.renderer, 'backend': type(backend).__module__,\n"
        "    'provider': 'arpo.demo.preset' in sys.modules}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARPO_")}
    env["HF_HUB_OFFLINE"] = "1"
    # the arpo under test, wherever the interpreter's own install points
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC.parent), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "home")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "before": [],
        "models": True,
        "renderer": "demo",
        "backend": "arpo.demo.render",
        "provider": True,
    }
