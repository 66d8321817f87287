"""The benchmark's output: one plain-text table, each measured number beside its goal."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.goals import Judged
from bench.measure import AwsTally, Latencies, ratio


@dataclass
class RpcRow:
    """One RPC driven side by side with echo."""

    name: str
    echo: Latencies
    broker: Latencies
    goals: list[Judged] = field(default_factory=list)

    @property
    def throughput_ratio(self) -> float:
        return ratio(self.broker.rate, self.echo.rate)

    @property
    def p99_ratio(self) -> float:
        return ratio(self.broker.p99, self.echo.p99)


@dataclass
class AwsRow:
    """The AWS calls of one operation (None when it failed: `note` says why)."""

    name: str
    tally: AwsTally | None
    goals: list[Judged] = field(default_factory=list)
    # Divide the counts by this to show them per request or per instance.
    per: int = 1
    seconds: float = math.nan
    note: str = ""


def number(value: float, digits: int = 0) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:,.{digits}f}"


def short(value: float) -> str:
    """A count or a ratio in as few characters as it needs: 12, 0.21, 1.5."""
    if math.isnan(value):
        return "-"
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Columns padded to their widest cell: numbers flush right; the first column and the last
    three (goal, measured, verdict) flush left."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    left = {0, len(header) - 3, len(header) - 1}

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.ljust(width) if i in left else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(padded).rstrip()

    return [line(header), "  ".join("-" * w for w in widths), *(line(row) for row in rows)]


def _goal_cells(judged: Sequence[Judged]) -> list[list[str]]:
    """[goal, measured, verdict] per goal; one empty triple when there is no goal."""
    return [[goal.text, short(value), goal.verdict(value)] for goal, value in judged] or [
        ["-", "", ""]
    ]


def rpc_table(rows: Sequence[RpcRow], in_flight: int) -> list[str]:
    header = [
        f"RPC ({in_flight} in flight)",
        "calls/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "echo calls/s",
        "echo p99 ms",
        "x echo",
        "p99/echo p99",
        "goal (issue 12)",
        "measured",
        "verdict",
    ]
    lines: list[list[str]] = []
    for row in rows:
        goals = _goal_cells(row.goals)
        lines.append(
            [
                row.name,
                number(row.broker.rate),
                number(row.broker.p50 * 1000, 1),
                number(row.broker.p99 * 1000, 1),
                str(row.broker.errors),
                number(row.echo.rate),
                number(row.echo.p99 * 1000, 1),
                number(row.throughput_ratio, 2),
                number(row.p99_ratio, 1),
                *goals[0],
            ]
        )
        lines.extend([*[""] * 9, *more] for more in goals[1:])
    return table(header, lines)


def aws_table(rows: Sequence[AwsRow]) -> list[str]:
    header = [
        "AWS calls at the emulator's boundary",
        "calls",
        "writes",
        "reads",
        "PutRolePolicy",
        "wall s",
        "goal (issue 12)",
        "measured",
        "verdict",
    ]
    lines: list[list[str]] = []
    for row in rows:
        goals = _goal_cells(row.goals)
        tally = row.tally
        counts = (
            ["failed", "", "", ""]
            if tally is None
            else [
                short(tally.calls / row.per),
                short(tally.writes / row.per),
                short(tally.reads / row.per),
                short(tally.count("PutRolePolicy") / row.per),
            ]
        )
        lines.append([row.name, *counts, number(row.seconds, 1), *goals[0]])
        lines.extend([*[""] * 6, *more] for more in goals[1:])
    return table(header, lines)


def breakdown(rows: Sequence[AwsRow]) -> list[str]:
    """Each operation's calls by action, and any note."""
    width = max((len(row.name) for row in rows), default=0)
    lines = []
    for row in rows:
        what = "" if row.tally is None else row.tally.breakdown()
        if row.per != 1 and row.tally is not None:
            what = f"(all {row.per}) {what}"
        lines.append(f"{row.name.ljust(width)}  {'; '.join(p for p in (what, row.note) if p)}")
    return lines
