"""Model wrappers and I/O used by the graph; no langgraph or mcp imports."""
