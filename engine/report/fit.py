"""Tables that fit the console's width without cutting a value: or, when none fits, the rows as lines.

A column holds a value whole (never wrapped, never cut with "…") unless it is free text (an error, a
reason), which may wrap between words but never inside one. A view offers its layouts from the fullest
to the barest (shorter times, fewer columns); the first that fits the width is drawn, with the usual
box and then, if that is too wide, a lighter one. When none fits, the caller prints the fullest
layout's rows as ``label: value`` lines, which any width holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

FREE_TEXT_WIDTH = 24
"""The narrowest a free-text column is drawn (or its longest word, or its whole text if shorter)."""

_UNBOUNDED = 100_000
"""A width no table reaches: measuring within it gives the table's own needs."""

BOXES = (box.HEAVY_HEAD, box.SIMPLE_HEAD)
"""The usual box, then one without vertical lines (and without edges), tried in this order."""


@dataclass(frozen=True)
class Column:
    """One column of a view: its header, one cell per row, and how it is laid out."""

    header: str
    cells: Sequence[Text]
    right: bool = False
    free_text: bool = False
    """Wraps between words (an error, a reason); any other column keeps each value on one line."""

    def width(self) -> int:
        """The narrowest this column can be drawn without breaking a value (or a word of free text)."""
        texts = [self.header, *(cell.plain for cell in self.cells)]
        if not self.free_text:
            return max(cell_len(line) for text in texts for line in [*text.splitlines(), ""])
        words = [cell_len(word) for text in texts for word in text.split()]
        longest = max([cell_len(line) for cell in self.cells for line in cell.plain.splitlines()], default=0)
        return max([*words, min(longest, FREE_TEXT_WIDTH)])


Layout = Sequence[Column]
"""A view's columns, the same number of cells in each."""


def fitting_table(console: Console, title: str | None, layouts: Sequence[Layout]) -> Table | None:
    """The first layout drawn as a table no wider than the console (the usual box first), or None."""
    for layout in layouts:
        for table_box in BOXES:
            table = _table(title, layout, table_box)
            needed = Measurement.get(console, console.options.update_width(_UNBOUNDED), table).minimum
            if needed <= console.width:
                _widen_free_text(table, layout, console.width - needed)
                return table
    return None


def print_fitted(console: Console, title: str, layouts: Sequence[Layout], *, heading: int = 0) -> None:
    """Print the first layout that fits as a table; else every row of the fullest one as lines.

    Each row's lines start with the ``heading`` column's value alone, then one ``header: value`` line
    per other column that has a value (wrapped between words when longer than the console).
    """
    table = fitting_table(console, title, layouts)
    if table is not None:
        console.print(table)
        return
    console.print(Text(title, style="italic"))
    for line in row_lines(layouts[0], heading=heading):
        console.print(line)  # a long value wraps between words


def row_lines(layout: Layout, *, heading: int = 0) -> list[Text]:
    """Every row as lines: the heading value, then ``  header: value`` for each other non-empty cell."""
    lines: list[Text] = []
    rows = len(layout[0].cells) if layout else 0
    for row in range(rows):
        lines.append(Text.assemble(layout[heading].cells[row], style="bold"))
        for index, column in enumerate(layout):
            cell = column.cells[row]
            if index != heading and cell.plain:
                lines.append(Text.assemble(f"  {column.header}: ", cell))
    return lines


def _table(title: str | None, layout: Layout, table_box: box.Box) -> Table:
    light = table_box is not BOXES[0]
    table = Table(title=title, title_justify="left", box=table_box, show_edge=not light, pad_edge=not light)
    for column in layout:
        table.add_column(
            column.header,
            justify="right" if column.right else "left",
            no_wrap=not column.free_text,
            overflow="fold",
            min_width=column.width(),
        )
    for row in range(len(layout[0].cells) if layout else 0):
        table.add_row(*(column.cells[row] for column in layout))
    return table


def _widen_free_text(table: Table, layout: Layout, spare: int) -> None:
    """Let the free-text columns take the spare width and no more: the table never has to shrink a column."""
    for drawn, column in zip(table.columns, layout, strict=True):
        if column.free_text:
            drawn.max_width = column.width() + spare
            spare = 0
