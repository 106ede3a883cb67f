"""Tables that fit the terminal: a table whose natural width exceeds the console's is printed
as records (one block per row, ``header: value`` lines) instead of being squeezed.

A squeezed rich table shortens cells (``gb200-n…``) or wraps them mid-word; an id one must
type is then lost. Records keep every cell whole at any width (80 columns, a pipe).
"""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group, RenderableType
from rich.measure import Measurement
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

#: wide enough that no table is ever clamped while being measured
_UNBOUNDED = 100_000


def natural_width(console: Console, table: Table) -> int:
    """Columns the table takes when no cell is wrapped or shortened."""
    return Measurement.get(console, console.options.update_width(_UNBOUNDED), table).maximum


def _text(cell: Any) -> Text:
    """A cell as text, never read as markup (the consoles read none either)."""
    return cell.copy() if isinstance(cell, Text) else Text(str(cell))


def records(table: Table) -> Group:
    """The table as records: its title, then per row the first cell as a heading and the
    other cells as ``header: value`` fields, indented, separated by ``;`` and wrapped only
    between words (a header-less two-column table: ``key: value``)."""
    cols = [[_text(c) for c in col.cells] for col in table.columns]
    heads = [_text(col.header).plain for col in table.columns]
    parts: list[RenderableType] = []
    if table.title:
        title = _text(table.title)
        title.stylize("bold")
        parts.append(title)
    nrows = max((len(c) for c in cols), default=0)
    for i in range(nrows):
        row = [c[i] if i < len(c) else Text() for c in cols]
        if len(row) == 2 and not table.show_header:
            parts.append(Text.assemble(row[0], ": ", row[1]))
            continue
        first = Text.assemble(f"{heads[0]}: " if heads[0] else "", row[0])
        first.stylize("bold")
        parts.append(first)
        fields = [Text.assemble(f"{head}: " if head else "", cell)
                  for head, cell in zip(heads[1:], row[1:], strict=True) if cell.plain.strip()]
        if fields:
            parts.append(Padding(Text("; ").join(fields), (0, 0, 0, 2), expand=False))
    return Group(*parts)


def fit(console: Console, obj: Any) -> Any:
    """``obj`` with every table too wide for ``console`` turned into records (groups are
    walked)."""
    if isinstance(obj, Group):
        return Group(*(fit(console, r) for r in obj.renderables))
    if isinstance(obj, Table) and natural_width(console, obj) > console.width:
        return records(obj)
    return obj
