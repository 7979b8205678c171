"""Help that reads as words: the typer classes every ``arpo`` command and group is built with.

typer shows a parameter's Python type (``<bool>`` beside a flag, ``<int>``, ``{prompt}``) and
keeps a docstring's line breaks. Here flags show nothing, arguments show their name in capitals
(IMAGE, RUN_ID), options their value's kind as a word (INTEGER, NUMBER, TEXT, PATH) unless they
name one (``metavar="RUN_ID"``), and a docstring's paragraphs are rewrapped to the terminal.
"""

from __future__ import annotations

import re
from typing import Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

__all__ = ["ReadableCommand", "ReadableGroup", "ReadableTyper", "unwrapped"]

_VALUE_WORDS = {"int": "INTEGER", "float": "NUMBER", "str": "TEXT", "path": "PATH"}
_LINE_BREAK = re.compile(r"(?<!\n)[ \t]*\n[ \t]*(?!\n)")


def unwrapped(text: str | None) -> str | None:
    """``text`` with the line breaks inside each paragraph turned into spaces (paragraphs,
    separated by a blank line, stay), so help wraps at the terminal's width, not the source's."""
    if text is None:
        return None
    import inspect

    return _LINE_BREAK.sub(" ", inspect.cleandoc(text))


def readable_metavar(param: Any, ctx: Any) -> None:
    """Give ``param`` a metavar that reads as a word, unless it has one."""
    if isinstance(param, TyperArgument):
        # its name column shows the metavar; typer would add "<str>" beside it
        param.display_type_rich = _nothing
    if param.metavar is not None:
        return
    if isinstance(param, TyperArgument):
        param.metavar = param.name.upper()
    elif isinstance(param, TyperOption) and param.is_flag:
        param.metavar = ""  # a flag takes no value: nothing to show
    elif isinstance(param, TyperOption):
        shown = param.display_type(ctx)  # "<int>", "<path>", "<list[str]>" ...
        bare = (shown or "<value>").strip("<>").removeprefix("list[").removesuffix("]")
        param.metavar = _VALUE_WORDS.get(bare, bare.upper())


def _nothing(ctx: Any) -> None:
    return None


class _Readable:
    """What both classes share: metavars fixed whenever the parameters are asked for."""

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            readable_metavar(param, ctx)
        return params


class ReadableCommand(_Readable, TyperCommand):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = unwrapped(self.help)

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        """``arpo generate [OPTIONS] PROMPT``: required arguments bare, optional in brackets."""
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = param.metavar + ("..." if param.nargs != 1 else "")
                pieces.append(name if param.required else f"[{name}]")
        return pieces


class ReadableGroup(_Readable, TyperGroup):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = unwrapped(self.help)


class ReadableTyper(typer.Typer):
    """A ``typer.Typer`` whose groups and commands are the readable ones by default."""

    def __init__(self, *args: Any, cls: type[TyperGroup] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, cls=cls or ReadableGroup, **kwargs)

    def command(self, *args: Any, cls: type[TyperCommand] | None = None, **kwargs: Any) -> Any:
        return super().command(*args, cls=cls or ReadableCommand, **kwargs)
