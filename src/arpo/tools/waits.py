"""Letting go of the model lock while a run waits on another machine.

The MCP server serialises model work (one copy of each model on one device) with a lock that a
request holds for its run. Much of a run is not model work but a wait: for the LLM's answer,
or for an images API's renders. Code that waits wraps the wait in :func:`waiting_on_service`;
whoever holds the lock for this context (:func:`lets_go_while_waiting`, set by the server's
job) lets go of it for the wait and takes it back after, so another request's renders and
scoring go on meanwhile. Outside the server nothing holds a lock and the wrapper does nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar

LetGo = Callable[[], AbstractContextManager[None]]

_let_go: ContextVar[LetGo | None] = ContextVar("arpo_let_go", default=None)


@contextmanager
def waiting_on_service() -> Iterator[None]:
    """Around a call that only waits on another machine (an LLM request, an images-API
    render): the model lock this context holds, if any, is free meanwhile."""
    let_go = _let_go.get()
    if let_go is None:
        yield
        return
    token = _let_go.set(None)  # a wait inside the wait lets go of nothing more
    try:
        with let_go():
            yield
    finally:
        _let_go.reset(token)


@contextmanager
def lets_go_while_waiting(let_go: LetGo) -> Iterator[None]:
    """Within this block, :func:`waiting_on_service` runs its waits inside ``let_go()``
    (which releases the holder's lock and takes it back)."""
    token = _let_go.set(let_go)
    try:
        yield
    finally:
        _let_go.reset(token)
