"""The job-id table as Markdown, CSV and JSON: the same eight columns, in the same order, in all three, then the
config keys that vary across the runs (seed included; bookkeeping such as output folders left out, see
records/groups.py), each cell as the run's config holds it.

Cells: epochs and batch_size as integers; learning_rate with 4 significant digits in Python's ``g`` form
(``0.001``, ``0.0001``, ``5e-05``: it reads back as the same number); scores with 4 decimals; ``-`` where a
value does not exist. A row that is not completed has its status appended to the Job id cell, e.g.
``17855 (failed)``; see ``runs`` for what each status shows.

JSON: ``{"columns": [...], "rows": [...], "problems": [...]}``; each row has the eight columns (the plain
job id, numbers parsed back from the Markdown cells, null for ``-``) and one extra field, ``status``.
"""

import csv
import io
import json
import re
from collections.abc import Sequence
from typing import Any

from .runs import COMPLETED, INTEGER_KEYS, PROTOCOL_KEYS, VALUE_KEYS, Run

COLUMNS = ("Job id", *VALUE_KEYS)  # the table's columns; a protocol asked for adds its scores after them
REPORT_MD, REPORT_CSV, REPORT_JSON = "report.md", "report.csv", "report.json"

_SLURM_ID = re.compile(r"(\d+)(?:_(\d+))?(?:_trial(\d+))?")


def job_sort_key(job_id: str) -> tuple[int, int, int, int, str]:
    """Numeric ids by number and ``<array>_<task>`` by (array, task), a search's ``<array>_<task>_trial<n>`` then
    by trial; SLURM counts both with one counter, so mixing them keeps submission order (a plain ``N`` sorts
    before ``N_0``). Other ids follow, as text."""
    match = _SLURM_ID.fullmatch(job_id)
    if match:
        task, trial = (-1 if group is None else int(group) for group in (match[2], match[3]))
        return 0, int(match[1]), task, trial, ""
    return 1, 0, 0, 0, job_id


def sort_runs(runs: list[Run]) -> list[Run]:
    return sorted(runs, key=lambda run: job_sort_key(run.job_id))


def format_value(key: str, value: float | int | None) -> str:
    if value is None:
        return "-"
    if key in INTEGER_KEYS:
        return str(int(value))
    if key == "learning_rate":
        return f"{value:.4g}"
    return f"{value:.4f}"


def job_cell(run: Run) -> str:
    return run.job_id if run.status == COMPLETED else f"{run.job_id} ({run.status})"


def columns(protocol: str = "strict", varying: Sequence[str] = ()) -> tuple[str, ...]:
    """The table's columns: the job id, the run folder contract's values, the protocol's own scores, then the
    config keys that vary across the runs."""
    return (*COLUMNS, *PROTOCOL_KEYS.get(protocol, ()), *varying)


def cells(run: Run, protocol: str = "strict", varying: Sequence[str] = ()) -> list[str]:
    """The row as text, exactly as Markdown and CSV show it."""
    return [
        job_cell(run),
        *(format_value(key, run.values.get(key)) for key in columns(protocol)[1:]),
        *(str(run.config[key]) if key in run.config else "-" for key in varying),
    ]


def to_markdown(runs: list[Run], problems: list[str], protocol: str = "strict", varying: Sequence[str] = ()) -> str:
    """An aligned pipe table (readable as plain text too), then the problems as a list."""
    lines = markdown_table(list(columns(protocol, varying)), [cells(run, protocol, varying) for run in runs])
    if problems:
        lines += ["", f"Problems ({len(problems)}):", *(f"- {problem}" for problem in problems)]
    return "\n".join(lines) + "\n"


def markdown_table(header: list[str], body: list[list[str]]) -> list[str]:
    """The lines of an aligned pipe table: the first column left-aligned, the others right-aligned."""
    rows = [header, *([c.replace("|", r"\|") for c in row] for row in body)]
    widths = [max(3, *(len(row[i]) for row in rows)) for i in range(len(header))]
    return [
        _markdown_line(rows[0], widths),
        "| " + " | ".join(("-" * (w - 1) + (":" if i else "-")) for i, w in enumerate(widths)) + " |",
        *(_markdown_line(row, widths) for row in rows[1:]),
    ]


def _markdown_line(row: list[str], widths: list[int]) -> str:
    padded = [row[0].ljust(widths[0]), *(cell.rjust(width) for cell, width in zip(row[1:], widths[1:]))]
    return "| " + " | ".join(padded) + " |"


def to_csv(runs: list[Run], protocol: str = "strict", varying: Sequence[str] = ()) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns(protocol, varying))
    writer.writerows(cells(run, protocol, varying) for run in runs)
    return buffer.getvalue()


def to_json(
    runs: list[Run], problems: list[str], protocol: str = "strict", varying: Sequence[str] = (), **sections: Any
) -> str:
    """The rows (values parsed back from their cells, varying keys as the config holds them), the problems,
    and any further ``sections`` (the groups and the paired comparison) under their own names."""
    header = columns(protocol)
    rows = [
        {
            header[0]: run.job_id,
            **{key: _parsed(key, cell) for key, cell in zip(header[1:], cells(run, protocol)[1:])},
            **{key: run.config.get(key) for key in varying},
            "status": run.status,
        }
        for run in runs
    ]
    report = {"columns": [*header, *varying], "rows": rows, "problems": problems, **sections}
    return json.dumps(report, indent=2) + "\n"


def _parsed(key: str, cell: str) -> float | int | None:
    """The number the Markdown cell shows, so the JSON can never disagree with it."""
    if cell == "-":
        return None
    return int(cell) if key in INTEGER_KEYS else float(cell)
