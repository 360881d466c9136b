"""Turning timings into the printed table and the JSON document kept in benchmarks/results."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness import Stats
from scenarios import Group


def rows(groups: list[Group], results: dict[str, dict[str, Stats]]) -> list[dict[str, Any]]:
    """One row per timed operation, with its p50 ratio to the group's floor and verdict."""
    out: list[dict[str, Any]] = []
    for group in groups:
        stats = results[group.name]
        floor = stats[group.floor] if group.floor else None
        for name, s in stats.items():
            ratio = s.p50_us / floor.p50_us if floor and name != group.floor else None
            target = group.targets.get(name)
            out.append(
                {
                    "group": group.name,
                    "operation": name,
                    "role": (
                        "floor"
                        if name == group.floor
                        else "target"
                        if target is not None
                        else "diagnostic"
                    ),
                    **asdict(s),
                    "floor": group.floor if name != group.floor else None,
                    "ratio_p50": round(ratio, 3) if ratio is not None else None,
                    "ratio_p99": (
                        round(s.p99_us / floor.p99_us, 3) if floor and name != group.floor else None
                    ),
                    "target_ratio_p50": target,
                    "passed": (ratio <= target) if ratio is not None and target else None,
                    "note": group.notes.get(name),
                }
            )
    return out


def render_table(table: list[dict[str, Any]]) -> str:
    """A fixed-width table a person can read in a terminal or paste into an issue."""
    header = ("operation", "p50 µs", "p99 µs", "p50/floor", "target", "result")
    lines: list[tuple[str, ...]] = []
    group = None
    out: list[str] = []
    for row in table:
        if row["group"] != group:
            group = row["group"]
            lines.append((f"[{group}]", "", "", "", "", ""))
        ratio = f"{row['ratio_p50']:.2f}x" if row["ratio_p50"] is not None else ""
        target = f"<= {row['target_ratio_p50']:.1f}x" if row["target_ratio_p50"] else ""
        if row["role"] == "floor":
            result = "(floor)"
        elif row["passed"] is None:
            result = row["note"] or ""
        else:
            result = "pass" if row["passed"] else "MISS"
        lines.append(
            (
                "  " + row["operation"],
                f"{row['p50_us']:.0f}",
                f"{row['p99_us']:.0f}",
                ratio,
                target,
                result,
            )
        )
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header))]

    def fmt(line: tuple[str, ...]) -> str:
        left = line[0].ljust(widths[0])
        nums = [line[i].rjust(widths[i]) for i in range(1, 5)]
        return "  ".join([left, *nums, line[5]]).rstrip()

    out.append(fmt(header))
    out.append("-" * (sum(widths[:5]) + 2 * 5 + len("result")))
    out.extend(fmt(line) for line in lines)
    return "\n".join(out)


def summary(table: list[dict[str, Any]], extra: list[tuple[str, bool]] | None = None) -> str:
    """One line: how many targets were met; a miss is reported, never an error exit.

    `extra` adds targets judged outside the latency table, as (name, passed)."""
    judged = [(row["operation"], bool(row["passed"])) for row in table if row["passed"] is not None]
    judged += extra or []
    missed = [name for name, passed in judged if not passed]
    if not missed:
        return f"all {len(judged)} targets met"
    return (
        f"{len(missed)} of {len(judged)} targets MISSED: {', '.join(missed)}"
        " (reported only; the run still succeeds)"
    )


def render_throughput(result: dict[str, Any]) -> str:
    """The HTTP throughput comparison (cache benchmark) as a fixed-width table: every
    target with its ratio to the baseline; the judged one carries the target and verdict."""
    title = (
        f"[HTTP warm-read throughput over sockets: {result['loadgen_settings']},"
        f" {result['rounds']} x {result['seconds_per_run']:g} s per target, order alternating]"
    )
    header = ("target", "req/s runs", "req/s", "p50 ms", "p99 ms", "CPU µs/req", "vs bare")
    lines: list[tuple[str, ...]] = []
    for name, s in result["servers"].items():
        if name == result["judged"]:
            verdict = "pass" if result["passed"] else "MISS"
            tail = f">= {result['target_ratio']:.0%}  {verdict}"
        elif name == result["baseline"]:
            tail = "(baseline)"
        else:
            tail = "diagnostic"
        ratio = s.get("ratio_rps")
        lines.append(
            (
                "  " + s["label"],
                " ".join(f"{r:.0f}" for r in s["rps_runs"]),
                f"{s['rps_mean']:.0f}",
                _num(s["p50_ms_mean"]),
                _num(s["p99_ms_mean"]),
                _num(s["server_cpu_us_per_request"], 0),
                f"{ratio:.2f}x" if ratio is not None else "",
                tail,
            )
        )
    widths = [max(len(x[i]) for x in [header, *lines]) for i in range(len(header))]

    def fmt(cells: tuple[str, ...]) -> str:
        left = cells[0].ljust(widths[0])
        nums = [cells[i].rjust(widths[i]) for i in range(1, len(header))]
        return "  ".join([left, *nums, *cells[len(header) :]]).rstrip()

    failures = ", ".join(
        f"{name} {s['non_2xx']} non-2xx / {s['errors']} socket errors"
        for name, s in result["servers"].items()
    )
    opened = result["servers"][result["judged"]].get("breaker_openings", 0)
    notes = [
        "  CPU µs/req: CPU time of the target's server processes per answered request"
        " (moves less with other load on the machine than req/s)",
        f"  failures: {failures}",
    ]
    judged = result["servers"][result["judged"]]
    for name, s in result["servers"].items():
        if name in (result["judged"], result["baseline"]):
            continue
        notes.append(
            f"  {result['judged']} vs {name}: {judged['rps_mean'] / s['rps_mean']:.2f}x req/s,"
            f" {_num(judged['server_cpu_us_per_request'], 0)} vs"
            f" {_num(s['server_cpu_us_per_request'], 0)} µs CPU/req"
        )
    if opened:
        notes.append(
            f"  ccv serve's cache breaker opened {opened} time(s) during timed runs: a Redis"
            " call took over 200 ms and that worker served from PostgreSQL for 2 s"
        )
    rule = "-" * (sum(widths) + 2 * len(widths) + len("target  result"))
    return "\n".join([title, fmt((*header, "target  result")), rule, *map(fmt, lines), *notes])


def _num(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def write_json(path: Path, document: dict[str, Any]) -> None:
    """Write the results document (benchmarks/results/*.json is git-ignored)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
