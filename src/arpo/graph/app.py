"""Module-level graph for LangGraph Server / Studio (``langgraph.json``).

Models load lazily on the first run, from ``ARPO_*`` settings. ``langgraph dev`` supplies its
own persistence, so this graph is compiled without a checkpointer.
"""

from arpo.graph.graph import build_graph
from arpo.tools.toolbox import Toolbox

graph = build_graph(Toolbox())
