"""Console helpers shared by the layers' command lines: run state, progress bars, summaries.

Kept here (the bottom layer) so that `pipelines.cli` and `models.cli` print the same way
without importing each other or the app.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from rich.console import Console
from rich.table import Table
from tqdm.auto import tqdm

T = TypeVar("T")


@dataclass
class CliState:
    """Global options of the `dosewise` command, passed to sub-commands through `ctx.obj`."""

    quiet: bool = False
    debug: bool = False
    tracking_uri: str | None = None


def cli_state(ctx: Any) -> CliState:
    """The root command's `CliState` from a click/typer context (defaults when run alone)."""
    root = ctx.find_root() if ctx is not None else None
    obj = getattr(root, "obj", None)
    return obj if isinstance(obj, CliState) else CliState()


def progress(
    items: Iterable[T], *, desc: str, total: int | None = None, show: bool = True
) -> Iterator[T]:
    """Wrap `items` in a tqdm bar on stderr unless `show` is False (`--quiet`)."""
    if not show:
        yield from items
        return
    yield from tqdm(items, desc=desc, total=total, file=sys.stderr, dynamic_ncols=True, leave=False)


def print_summary(title: str, rows: Sequence[tuple[str, Any]], *, quiet: bool = False) -> None:
    """Print a two-column summary table (the end of every batch command)."""
    if quiet:
        return
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value")
    for key, value in rows:
        table.add_row(str(key), str(value))
    Console().print(table)


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a table with a header row (estimates, counts by rule, benchmark results)."""
    table = Table(title=title, title_justify="left")
    for name in header:
        table.add_column(str(name))
    for row in rows:
        table.add_row(*(str(v) for v in row))
    Console().print(table)


def print_warning(text: str) -> None:
    """One yellow `Warning:` line on stderr; shown even with `--quiet`, since it qualifies the answer."""
    from rich.markup import escape

    Console(stderr=True).print(f"[yellow]Warning:[/] {escape(text)}", highlight=False, soft_wrap=True)
