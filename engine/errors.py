"""Exceptions raised by the engine.

Every exception is a ``ValueError`` subclass whose message is one complete
sentence naming the file or value, the problem and what to do about it, so the
CLI and the dashboard can show it as is, without a traceback.
"""

from __future__ import annotations


class EngineError(ValueError):
    """Base class of all errors the engine raises on purpose."""


class DataError(EngineError):
    """Input data that cannot be used: unreadable, malformed or unsuitable."""


class ConfigError(EngineError):
    """A configuration value outside its allowed range."""


def one_line(error: BaseException, limit: int = 200) -> str:
    """Return an exception's message on one line, at most ``limit`` characters.

    For quoting a library's error inside one of the engine's one-sentence messages.
    """
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
