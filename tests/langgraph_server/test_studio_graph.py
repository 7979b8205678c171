"""The graph langgraph.json serves, run in-process: its schemas, its options, its errors."""

from __future__ import annotations

import functools
import json
from dataclasses import fields
from pathlib import Path

import anyio
import pytest
from PIL import Image

from arpo.errors import InvalidImageError, ModelNotAvailableError
from arpo.graph.context import RunOptions
from arpo.langgraph_server.graph import for_the_client, graph
from arpo.langgraph_server.schemas import RunOptionsGiven, given_options

ROOT = Path(__file__).resolve().parents[2]


def test_langgraph_json_serves_this_graph() -> None:
    spec = json.loads((ROOT / "langgraph.json").read_text())["graphs"]["arpo"]
    path, _, name = spec.partition(":")
    assert (ROOT / path).resolve() == (ROOT / "src/arpo/langgraph_server/graph.py").resolve()
    assert name == "graph"


def test_studio_gets_an_input_form_an_output_and_the_options() -> None:
    form = graph.get_input_jsonschema()
    assert form["required"] == ["image"]
    assert set(form["properties"]) == {"image", "prompt"}
    assert "allowed roots" in form["properties"]["image"]["description"]
    output = graph.get_output_jsonschema()["properties"]
    shown = {"best_prompt", "best_text_score", "best_image_score", "links", "previews"}
    assert shown <= set(output)
    options = graph.get_context_jsonschema()["properties"]
    assert set(options) == {option.name for option in fields(RunOptions)}
    assert all(option.get("default", "missing") is None for option in options.values())


def test_the_loop_graphs_state_has_a_json_schema_too() -> None:
    """ArpoState's TypedDicts come from typing_extensions, so pydantic can describe them."""
    from arpo.graph.graph import build_graph
    from arpo.tools.toolbox import Toolbox

    loop = build_graph(Toolbox())
    assert "reference" in loop.get_input_jsonschema()["properties"]
    assert "best" in loop.get_output_jsonschema()["properties"]


def test_only_the_options_a_client_set_are_passed_on() -> None:
    assert given_options(None) == {}
    assert given_options(RunOptionsGiven()) == {}
    assert given_options(RunOptionsGiven(iterations=2, budget=0)) == {"iterations": 2, "budget": 0}
    assert given_options({"seed": 3, "width": None}) == {"seed": 3}


@pytest.mark.parametrize(
    "error", [InvalidImageError("cannot read image: fix it"), ModelNotAvailableError("get it")]
)
def test_arpo_errors_leave_a_node_as_value_errors_of_the_same_name(error: Exception) -> None:
    with pytest.raises(ValueError, match=str(error)) as raised, for_the_client():
        raise error
    assert type(raised.value).__name__ == type(error).__name__
    assert raised.value.__cause__ is error


def test_a_path_outside_the_allowed_roots_is_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARPO_HOME", str(tmp_path / "home"))
    outside = tmp_path / "elsewhere.png"
    Image.new("RGB", (8, 8)).save(outside)
    with pytest.raises(ValueError, match="outside the allowed folders") as raised:
        anyio.run(functools.partial(graph.ainvoke, {"image": str(outside)}))
    assert type(raised.value).__name__ == "InvalidImageError"


def test_a_missing_model_is_named_to_the_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, red_circle: str
) -> None:
    missing = tmp_path / "no-such-model"
    monkeypatch.setenv("ARPO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ARPO_T2I_MODEL", str(missing))
    with pytest.raises(ValueError, match="no-such-model") as raised:
        anyio.run(
            functools.partial(graph.ainvoke, {"image": red_circle}, context={"strategy": "offline"})
        )
    assert type(raised.value).__name__ == "ModelNotAvailableError"
