"""One summary for every result type: a title, a small table and notes, as text and as HTML.

Each result's ``summary()`` builds a :class:`Summary` from its own ``record()`` (the same
numbers that go to results.json, nothing recomputed). ``print(result.summary())`` gives
aligned text for a terminal or a log; in JupyterLab, ``result.summary()`` as the last line
of a cell displays as an HTML table (``_repr_html_``). It sits in the base layer because
the core's results (fit, bootstrap) build it, and it needs nothing but the standard library.
"""

from __future__ import annotations

import html
import math
import numbers
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Row:
    """One quantity: its value and, where there is one, its interval and standard error."""

    name: str
    value: object
    interval: tuple | None = None
    se: float | None = None


@dataclass
class Summary:
    """``title``; ``rows`` of (name, value, interval, SE); ``notes``: status, warnings and
    how the result was made, one line each. ``level`` names the interval column (0.95 ->
    "95% interval")."""

    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    level: float | None = None

    def table(self) -> list[list[str]]:
        """The table as text cells, header first (what both renderings show); the interval
        and SE columns appear only when some row has one."""
        with_interval = any(r.interval is not None for r in self.rows)
        with_se = any(r.se is not None for r in self.rows)
        header = ["", "value"]
        header += [f"{self.level:.0%} interval" if self.level else "interval"] if with_interval else []
        header += ["SE"] if with_se else []
        out = [header]
        for r in self.rows:
            cells = [r.name, _number(r.value)]
            cells += [_interval(r.interval)] if with_interval else []
            cells += [_number(r.se)] if with_se else []
            out.append(cells)
        return out

    def __str__(self) -> str:
        lines = [self.title]
        if self.rows:
            table = self.table()
            widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
            for row in table:
                lines.append("  " + "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                                              for i, (cell, w) in enumerate(zip(row, widths))).rstrip())
        lines += [f"  {note}" for note in self.notes]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        e = html.escape
        parts = [f'<div class="scalerepro-summary"><strong>{e(self.title)}</strong>']
        if self.rows:
            header, *body = self.table()
            parts.append("<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr></thead><tbody>")
            for row in body:
                parts.append("<tr>" + f"<th>{e(row[0])}</th>"
                             + "".join(f'<td style="text-align:right">{e(c)}</td>' for c in row[1:]) + "</tr>")
            parts.append("</tbody></table>")
        if self.notes:
            parts.append("<ul>" + "".join(f"<li>{e(note)}</li>" for note in self.notes) + "</ul>")
        parts.append("</div>")
        return "".join(parts)


def _number(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return str(value)
    return "nan" if math.isnan(value) else f"{float(value):.6g}"


def _interval(interval) -> str:
    if interval is None:
        return "—"
    low, high = interval
    return f"[{_number(low)}, {_number(high)}]"
