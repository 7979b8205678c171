"""LangGraph Server / Studio face: a graph a ``langgraph dev`` client feeds with an image.

``langgraph.json`` points at :data:`arpo.langgraph_server.graph.graph`. Its input names an
image the way the MCP tools take one (a path inside the allowed roots, base64 or a data URL, an
artifact id, a URL when ``ARPO_ALLOW_URLS`` allows); its first node puts the image in the
artifact store, the second runs a normal arpo run (run folder, report, resumable with
``arpo invert --resume``), the third shapes what a client shows: the best prompt, its scores,
``file://`` links and base64 previews. Like the MCP server, it is a thin adapter over the api.
"""
