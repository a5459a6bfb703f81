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
