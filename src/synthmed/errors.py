"""Errors a user can act on.

The CLI turns an ``InputError`` into one line (``error: <file>: <problem>``) and exit code 2,
without a traceback. Raise it for anything wrong with the user's files or config.
"""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """Bad user input: a file that is missing, unreadable or inconsistent, or a bad config key."""

    def __init__(self, problem: str, path: str | Path | None = None) -> None:
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)
