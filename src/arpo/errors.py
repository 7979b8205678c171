"""arpo's error vocabulary.

Every error a user can cause or fix derives from :class:`ArpoError`; its message says what went
wrong *and what to do*. The CLI prints the message on one line and exits non-zero; the MCP
server turns it into a tool error. Anything else escaping is a bug.
"""

from __future__ import annotations

from dataclasses import dataclass


class ArpoError(Exception):
    """Base class: an error whose message is meant for the user."""

    exit_code = 1


class InvalidImageError(ArpoError):
    """The input is not a usable image (missing, a directory, corrupt, too large, bad base64)."""


class InvalidOptionError(ArpoError, ValueError):
    """A run option or setting has a value arpo cannot use."""

    exit_code = 2


@dataclass(frozen=True)
class SettingProblem:
    """One refused setting: the field, the value as given (None when secret), why."""

    name: str
    value: object
    reason: str
    given: bool  # passed as a keyword (a CLI option), not read from ARPO_* or .env


class InvalidSettingError(InvalidOptionError):
    """Settings (``ARPO_*``, ``.env`` or options) hold values arpo cannot use; ``problems``
    says which, so a face can name them as its user wrote them (a CLI option, a variable)."""

    def __init__(self, message: str, problems: list[SettingProblem]) -> None:
        super().__init__(message)
        self.problems = problems


class ModelNotAvailableError(ArpoError):
    """A model could not be loaded (not cached offline, not found, wrong format)."""


class LLMError(ArpoError):
    """Base class for problems talking to the OpenAI-compatible LLM."""


class LLMUnavailableError(LLMError):
    """The LLM endpoint could not be reached, timed out, or refused the request."""


class LLMRequestError(LLMUnavailableError):
    """The LLM refused the request itself (HTTP 4xx other than 429): a setting or another
    model fixes it; sending the same request again would not."""


class LLMOutputError(LLMError):
    """The LLM answered, but not in the structure asked for (after a retry)."""


class RunNotFoundError(ArpoError):
    """No stored run has the given id."""


class RunBusyError(ArpoError):
    """Another live process is running the run (it holds the run's lease)."""


class RunCancelled(ArpoError):
    """The run was stopped on request (Ctrl-C, a cancelled MCP request); it stays resumable."""

    exit_code = 130


class RenderError(ArpoError):
    """A render failed in a way a setting fixes: NaN or all-black images (the dtype), or out of
    memory even one image at a time (offload, tiling, a smaller size)."""


class CostLimitReached(ArpoError):
    """The next renders would pass the run's ``max_cost``: the run stops where it is, with its
    best prompt so far, and resumes (``arpo invert --resume RUN_ID --max-cost MORE``)."""
