"""The group table and the paired comparison as Markdown, CSV and JSON (data: replicates.py and paired.py).

Markdown cells: ``mean ± std (min-max)`` with 4 decimals, just the value for a group of one run (no spread is
made up), ``-`` where no completed run has the score; ``not completed`` counts the group's other runs by status.
CSV (groups.csv): one row per group, each score as ``<score>_mean``, ``_std``, ``_min``, ``_max``. JSON (the
``groups`` and ``comparisons`` of report.json): the same numbers unrounded.
"""

import csv
import io
from dataclasses import asdict
from typing import Any

from .paired import CONFIDENCE, PAIRED_PROTOCOL, PairedDifference
from .replicates import SUMMARY_KEYS, Group, Summary, column_name
from .table import format_value, markdown_table

GROUPS_CSV = "groups.csv"
STATS = ("mean", "std", "min", "max")


def shown_scores(groups: list[Group]) -> list[str]:
    """The scores at least one group has, in SUMMARY_KEYS order (a protocol no run measured has no column)."""
    return [key for key in SUMMARY_KEYS if any(key in group.summaries for group in groups)]


def setting_keys(groups: list[Group]) -> list[str]:
    return list(groups[0].settings) if groups else []


def summary_cell(key: str, summary: Summary | None) -> str:
    if summary is None:
        return "-"
    if key == "epochs":
        low, high = format_value(key, summary.min), format_value(key, summary.max)
        return low if low == high else f"{low}-{high}"
    if summary.std is None:
        return f"{summary.mean:.4f}"
    return f"{summary.mean:.4f} ± {summary.std:.4f} ({summary.min:.4f}-{summary.max:.4f})"


def not_completed_text(group: Group) -> str:
    return ", ".join(f"{count} {status}" for status, count in sorted(group.not_completed.items()))


def group_header(groups: list[Group]) -> list[str]:
    return ["Group", *map(column_name, setting_keys(groups)), "n", "not completed", *shown_scores(groups)]


def group_cells(group: Group, groups: list[Group]) -> list[str]:
    return [
        group.key,
        *(setting_cell(key, group.settings[key]) for key in setting_keys(groups)),
        str(group.n),
        not_completed_text(group) or "-",
        *(summary_cell(key, group.summaries.get(key)) for key in shown_scores(groups)),
    ]


def setting_cell(key: str, value: Any) -> str:
    column = column_name(key)
    if column != key and isinstance(value, (int, float)) and not isinstance(value, bool):
        return format_value(column, value)
    return str(value)


def ranking_line(groups: list[Group]) -> str:
    ranked = next((g.objective for g in groups if g.objective is not None), None)
    if ranked is None:
        return f"{len(groups)} group(s); none has a completed run to rank it yet."
    best = "highest" if ranked.mode == "max" else "lowest"
    return (
        f"{len(groups)} group(s), ranked by the mean {ranked.metric} of their completed runs ({best} first); "
        "mean ± std (min-max) over completed runs, the value alone for one run."
    )


def comparison_header(best: str) -> list[str]:
    return ["Group", "score", "photographs", f"difference vs {best}", f"{CONFIDENCE:.0%} CI", "verdict"]


def comparison_cells(difference: PairedDifference) -> list[str]:
    return [
        difference.group,
        difference.score,
        str(difference.photographs),
        f"{difference.mean:+.4f}",
        f"[{difference.low:+.4f}, {difference.high:+.4f}]",
        difference.verdict(),
    ]


def groups_markdown(groups: list[Group], differences: list[PairedDifference]) -> str:
    """The group table under its ranking line, then each group against the best on the same photographs."""
    if not groups:
        return ""
    lines = ["## Groups", "", ranking_line(groups), ""]
    lines += markdown_table(group_header(groups), [group_cells(group, groups) for group in groups])
    if differences:
        lines += [
            "",
            f"## Against the best group, on the same test photographs (per-image {PAIRED_PROTOCOL} scores)",
            "",
            f"Mean difference and its {CONFIDENCE:.0%} paired bootstrap interval; not distinguishable when it holds 0.",
            "",
            *markdown_table(comparison_header(differences[0].best), [comparison_cells(d) for d in differences]),
        ]
    return "\n".join([*lines, "", "## Runs", ""]) + "\n"


def groups_csv(groups: list[Group]) -> str:
    keys, scores = setting_keys(groups), shown_scores(groups)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["group", *map(column_name, keys), "n", "not_completed", *(f"{s}_{stat}" for s in scores for stat in STATS)]
    )
    for group in groups:
        numbers = []
        for score in scores:
            summary = group.summaries.get(score)
            numbers += ["" if summary is None or getattr(summary, s) is None else getattr(summary, s) for s in STATS]
        writer.writerow([group.key, *(group.settings[k] for k in keys), group.n, not_completed_text(group), *numbers])
    return buffer.getvalue()


def groups_json(groups: list[Group]) -> list[dict[str, Any]]:
    return [
        {
            "group": group.key,
            "rank": rank,
            "settings": {column_name(key): value for key, value in group.settings.items()},
            "n": group.n,
            "not_completed": group.not_completed,
            "runs": [{"Job id": run.job_id, "status": run.status} for run in group.runs],
            "objective": None if group.objective is None else asdict(group.objective),
            "summaries": {key: asdict(summary) for key, summary in group.summaries.items()},
        }
        for rank, group in enumerate(groups, start=1)
    ]


def comparisons_json(differences: list[PairedDifference]) -> list[dict[str, Any]]:
    return [{**asdict(d), "distinguishable": d.distinguishable} for d in differences]
