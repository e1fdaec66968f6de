"""Result rows, ratio maths and the markdown/PNG renderings of one benchmark run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

UNITS = {"ops/s": "{:,.0f} ops/s", "bytes/key": "{:,.1f} B/key", "s": "{:.2f} s",
         "ms": "{:,.1f} ms", "bytes/element": "{:,.1f} B/element"}


@dataclass
class Row:
    """One measured figure; ``value`` is None when the measurement failed (see ``note``)."""

    group: str
    server: str
    test: str
    value: Optional[float]
    unit: str = "ops/s"
    conns: Optional[int] = None
    pipeline: Optional[int] = None
    p50: Optional[float] = None
    p99: Optional[float] = None
    note: str = ""

    def key(self) -> tuple:
        """Return what makes two rows comparable: group, test, -c and -P."""
        return (self.group, self.test, self.conns, self.pipeline)


def ratio(value: Optional[float], reference: Optional[float]) -> Optional[float]:
    """Return value / reference, or None if either is missing or the reference is zero."""
    if value is None or not reference:
        return None
    return value / reference


def ratios(rows, references: dict, ceilings: dict) -> list:
    """Return ``[(row, x_ref, x_ceiling)]`` in row order.

    ``references`` maps a group name, ``ceilings`` a server label, to the server label
    whose row with the same ``Row.key()`` is the denominator; no entry or no such row
    gives None.
    """
    by_server = {}
    for row in rows:
        by_server[(row.server,) + row.key()] = row
    out = []
    for row in rows:
        found = []
        for table, name in ((references, row.group), (ceilings, row.server)):
            label = table.get(name)
            base = by_server.get((label,) + row.key()) if label is not None else None
            found.append(ratio(row.value, base.value) if base is not None else None)
        out.append((row, found[0], found[1]))
    return out


def _num(value, fmt="{:.2f}") -> str:
    return "–" if value is None else fmt.format(value)


def grouped(rows) -> list:
    """Return ``rows`` with each group's rows together, groups in order of first appearance."""
    order = {}
    for row in rows:
        order.setdefault(row.group, len(order))
    return sorted(rows, key=lambda row: order[row.group])


def markdown(rows, references: dict, ceilings: dict) -> str:
    """Return the run as one markdown table, followed by what each group's ratio is against."""
    rows = grouped(rows)
    lines = ["| Group | Server | Test | -c | -P | Result | p50 ms | p99 ms | x ref | x ceiling |",
             "|---|---|---|--:|--:|--:|--:|--:|--:|--:|"]
    for row, x_ref, x_ceiling in ratios(rows, references, ceilings):
        result = (UNITS.get(row.unit, "{:.2f} " + row.unit).format(row.value)
                  if row.value is not None else "failed")
        if row.note:
            result += " (%s)" % row.note.replace("|", "/")
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            row.group, row.server, row.test, _num(row.conns, "{}"), _num(row.pipeline, "{}"),
            result, _num(row.p50, "{:.3f}"), _num(row.p99, "{:.3f}"), _num(x_ref),
            _num(x_ceiling)))
    groups = []
    for row in rows:
        if row.group not in groups:
            groups.append(row.group)
    lines.append("")
    for group in groups:
        lines.append("- **%s**: x ref = against %s in the same run." % (
            group, references.get(group, "nothing")))
    for server in sorted(ceilings):
        if any(row.server == server for row in rows):
            lines.append("- x ceiling: %s against %s in the same run." % (
                server, ceilings[server]))
    return "\n".join(lines) + "\n"


def chart(rows, references: dict, path: str, title: str) -> bool:
    """Write a horizontal bar chart of every non-reference throughput row's x ref to
    ``path`` (PNG).

    Returns False, writing nothing, when matplotlib is missing or no row has a ratio.
    """
    bars = [(row, x_ref) for row, x_ref, _ in ratios(grouped(rows), references, {})
            if x_ref is not None and row.unit == "ops/s"
            and row.server != references.get(row.group)]  # references are all 1.0
    if not bars:
        return False
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    labels = ["%s | %s | %s -c%s -P%s" % (r.group, r.server, r.test, r.conns, r.pipeline)
              for r, _ in bars]
    height = max(3.0, 0.22 * len(bars) + 1.2)
    fig, ax = plt.subplots(figsize=(10, height))
    colours = ["#999999" if r.server.startswith("redis") else
               "#6a9fd4" if "ceiling" in r.server else "#d4843e" for r, _ in bars]
    ax.barh(range(len(bars)), [x for _, x in bars], color=colours)
    ax.set_yticks(range(len(bars)))
    ax.set_yticklabels(labels, fontsize=6)
    ax.invert_yaxis()
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xlabel("throughput as a multiple of the group's reference (same run)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
