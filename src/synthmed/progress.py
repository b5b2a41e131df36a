"""Progress reporting for long stages: a live bar on a terminal, plain lines otherwise.

CI logs stay readable (no carriage-return spam) and ``quiet`` silences everything.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager


class _PlainProgress:
    """Prints ``stage: i/total (x%)`` about every 10% when stdout is not a TTY."""

    def __init__(self, desc: str, total: int, quiet: bool) -> None:
        self.desc, self.total, self.quiet = desc, max(1, total), quiet
        self.done, self.next_mark, self.start = 0, 0.1, time.perf_counter()
        self.postfix = ""

    def advance(self, n: int = 1, postfix: str = "") -> None:
        self.done += n
        self.postfix = postfix or self.postfix
        frac = self.done / self.total
        if not self.quiet and (frac >= self.next_mark or self.done == self.total):
            elapsed = time.perf_counter() - self.start
            print(
                f"{self.desc}: {self.done}/{self.total} ({frac:.0%}, {elapsed:.0f}s) {self.postfix}",
                flush=True,
            )
            while self.next_mark <= frac:
                self.next_mark += 0.1


class _RichProgress:
    def __init__(self, bar, task) -> None:
        self.bar, self.task = bar, task

    def advance(self, n: int = 1, postfix: str = "") -> None:
        self.bar.update(self.task, advance=n, postfix=postfix)


@contextmanager
def stage(desc: str, total: int, quiet: bool = False) -> Iterator[_PlainProgress | _RichProgress]:
    """A progress reporter for one pipeline stage; call ``.advance(n, postfix)``."""
    if quiet or not sys.stdout.isatty():
        yield _PlainProgress(desc, total, quiet)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[postfix]}"),
    )
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task(desc, total=total, postfix="")
        yield _RichProgress(bar, task)
