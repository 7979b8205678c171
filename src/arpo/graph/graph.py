"""The ARPO state machine, wired from :mod:`arpo.graph.nodes`.

``START -> initialize -> generate -> [critique] -> propose -> select -> stop_check``, then back
to ``generate`` or on to ``finalize -> END``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from langgraph.graph import END, START, StateGraph

from arpo.graph.context import RunOptions
from arpo.graph.nodes import Nodes, SpendMeter
from arpo.graph.state import ArpoState

if TYPE_CHECKING:
    from langgraph.checkpoint.base import BaseCheckpointSaver
    from langgraph.graph.state import CompiledStateGraph

    from arpo.tools.toolbox import Toolbox


def build_graph(
    toolbox: Toolbox,
    checkpointer: BaseCheckpointSaver | None = None,
    *,
    meter: SpendMeter | None = None,
) -> CompiledStateGraph:
    """Compile the loop over ``toolbox``'s models; pass a checkpointer to make runs resumable,
    and a meter to learn what a failed step paid for."""
    nodes = Nodes(toolbox, meter)
    builder: StateGraph[ArpoState, RunOptions, Any, Any] = StateGraph(
        ArpoState, context_schema=RunOptions
    )
    builder.add_node("initialize", nodes.initialize)
    builder.add_node("generate", nodes.generate)
    builder.add_node("critique", nodes.critique)
    builder.add_node("propose", nodes.propose)
    builder.add_node("select", nodes.select)
    builder.add_node("stop_check", nodes.stop_check)
    builder.add_node("finalize", nodes.finalize)

    builder.add_edge(START, "initialize")
    builder.add_edge("initialize", "generate")
    builder.add_conditional_edges(
        "generate", nodes.after_generate, ["critique", "propose", "finalize"]
    )
    builder.add_edge("critique", "propose")
    builder.add_edge("propose", "select")
    builder.add_edge("select", "stop_check")
    builder.add_conditional_edges("stop_check", nodes.after_stop_check, ["generate", "finalize"])
    builder.add_edge("finalize", END)
    return builder.compile(checkpointer=checkpointer, name="arpo")


def open_checkpointer(path: str) -> BaseCheckpointSaver:
    """A SQLite checkpointer usable from several threads (the MCP server runs tools in threads)."""
    import sqlite3

    from langgraph.checkpoint.sqlite import SqliteSaver

    connection = sqlite3.connect(path, check_same_thread=False)
    # WAL with synchronous=NORMAL: a crash cannot corrupt the database, and a checkpoint
    # costs no fsync (a power cut may lose the last step, which a resume simply redoes).
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    return SqliteSaver(connection)
