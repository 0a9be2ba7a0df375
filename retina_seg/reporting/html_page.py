"""report.html: the report as one page that answers "which setting wins" first, then shows why.

One self-contained file, viewable offline and sent as an attachment: its style and script are inline and its
pictures are PNG data URIs, nothing is fetched when it is opened. In order: the answer (the best group, and
whether the next one is distinguishable from it on the same photographs), a search's study (the best trial, its
trials by state, Optuna's history and importances), the group table (sortable: click a
header), each group against the best, the learning curves (plots.py's group bands), the best run's test
photographs with its prediction's outcomes, and the job-id table with its problems.
"""

import base64
import html
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from .group_table import comparison_cells, comparison_header, group_cells, group_header, ranking_line, shown_scores
from .paired import CONFIDENCE, PAIRED_PROTOCOL, PairedDifference
from .plots import group_label
from .replicates import Group
from .runs import Run
from .study_view import StudyView, best_text, counts_text
from .table import cells, columns

REPORT_HTML = "report.html"


@dataclass(frozen=True)
class PagePhotographs:
    """The best run's test photographs as PNG pictures with captions and the outcome colours, or, without
    pictures, the note saying why there are none."""

    heading: str = ""
    pictures: list[tuple[str, bytes]] = field(default_factory=list)
    legend: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class PageFigure:
    title: str
    png: bytes


STYLE = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; background: #fafafa;
  margin: 0 auto; padding: 1.5em 2em 4em; max-width: 1200px; }
h1 { font-size: 1.6em; margin: 0 0 .2em; } h2 { font-size: 1.2em; margin: 2em 0 .5em; }
.meta, .note { color: #666; } .answer { background: #eef5ee; border-left: 5px solid #3a7d44; padding: .8em 1.2em;
  margin: 1.2em 0; font-size: 1.08em; } .answer p { margin: .3em 0; }
.scroll { overflow: auto; max-height: 34em; } thead th { position: sticky; top: 0; }
table { border-collapse: collapse; background: #fff; font-size: .9em; }
th, td { border-bottom: 1px solid #e3e3e3; padding: .35em .7em; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; } th { background: #f0f0f0; }
table.sortable th { cursor: pointer; user-select: none; } table.sortable th:hover { background: #e4e4e4; }
th[aria-sort=ascending]::after { content: " \\25B2"; } th[aria-sort=descending]::after { content: " \\25BC"; }
tr.best td { font-weight: 600; background: #f3f9f3; } tr.distinguishable td { color: #8a3b00; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #ddd; background: #fff; }
figcaption { color: #555; font-size: .9em; } .legend span.swatch { display: inline-block; width: 1em;
  height: 1em; vertical-align: -.15em; margin: 0 .3em 0 1em; border: 1px solid #999; }
details { margin: 1em 0; } summary { cursor: pointer; }
"""

# Sorts a table by the clicked column: numbers (a cell's data-value, else its text) numerically, other text
# alphabetically, "-" (no value) last either way; a second click reverses. The order is kept on the table as
# data-sort-column and data-sort-order, and on the header as aria-sort.
SCRIPT = """
(function () {
  var NUMBER = /^[-+]?(\\d+\\.?\\d*|\\.\\d+)(e[-+]?\\d+)?$/i;
  function sortKey(row, column) {
    var cell = row.cells[column];
    var text = cell.hasAttribute("data-value") ? cell.getAttribute("data-value") : cell.textContent.trim();
    if (text === "-" || text === "") return null;
    return NUMBER.test(text) ? parseFloat(text) : text;
  }
  function compare(a, b) {
    if (typeof a === "number" && typeof b === "number") return a - b;
    if (typeof a === "number") return -1;
    if (typeof b === "number") return 1;
    return a.localeCompare(b);
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var headers = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(headers, function (header, column) {
      header.addEventListener("click", function () {
        var ascending = !(table.dataset.sortColumn === String(column) && table.dataset.sortOrder === "ascending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (x, y) {
          var a = sortKey(x, column), b = sortKey(y, column);
          if (a === null || b === null) return (a === null) - (b === null);
          return ascending ? compare(a, b) : compare(b, a);
        });
        rows.forEach(function (row) { body.appendChild(row); });
        Array.prototype.forEach.call(headers, function (other) { other.removeAttribute("aria-sort"); });
        header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        table.dataset.sortColumn = String(column);
        table.dataset.sortOrder = ascending ? "ascending" : "descending";
      });
    });
  });
})();
"""


def report_page(
    title: str,
    runs: list[Run],
    problems: list[str],
    groups: list[Group],
    differences: list[PairedDifference],
    figures: list[PageFigure],
    photographs: PagePhotographs,
    protocol: str = "strict",
    varying: tuple[str, ...] | list[str] = (),
    studies: Sequence[StudyView] = (),
) -> str:
    """The whole page as text."""
    sections = [
        f"<h1>{_text(title)}</h1>",
        f'<p class="meta">{_text(run_counts(runs, groups))}</p>',
        answer_section(groups, differences),
        *(study_section(study) for study in studies),
        groups_section(groups),
        comparison_section(groups, differences),
        curves_section(figures),
        photographs_section(photographs),
        runs_section(runs, problems, protocol, varying),
    ]
    body = "\n".join(section for section in sections if section)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_text(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n"
        f"<script>{SCRIPT}</script>\n</body>\n</html>\n"
    )


def run_counts(runs: list[Run], groups: list[Group]) -> str:
    statuses = Counter(run.status for run in runs)
    counted = ", ".join(f"{count} {status}" for status, count in sorted(statuses.items()))
    return f"{len(runs)} run(s) in {len(groups)} group(s): {counted}."


def answer_section(groups: list[Group], differences: list[PairedDifference]) -> str:
    """Which setting wins, in two sentences: the best group by its objective, and the next one against it."""
    best = groups[0] if groups and groups[0].objective is not None else None
    if best is None:
        return '<div class="answer" id="answer"><p>No group has a completed run yet: nothing to rank.</p></div>'
    objective = best.objective
    spread = best.summaries.get(objective.metric)
    value = f"{objective.value:.4f}" + (f" ± {spread.std:.4f}" if spread and spread.std is not None else "")
    lines = [
        f"<p><strong>Best setting: {_text(group_label(best))}</strong>, mean {_text(objective.metric)} "
        f"{value} over {best.n} completed run(s).</p>"
    ]
    ranked = [group for group in groups[1:] if group.objective is not None]
    if not ranked:
        lines.append("<p>No other group has a completed run to compare it with.</p>")
    else:
        runner_up = ranked[0]
        found = [d for d in differences if d.group == runner_up.key and d.score == "IoU"]
        if found:
            d = found[0]
            verdict = "cannot be told apart from it" if not d.distinguishable else "is distinguishable from it"
            lines.append(
                f"<p>The next, {_text(group_label(runner_up))}, <strong>{verdict}</strong>: per-image test IoU "
                f"{d.mean:+.4f} ({CONFIDENCE:.0%} CI [{d.low:+.4f}, {d.high:+.4f}]) "
                f"on the same {d.photographs} photographs.</p>"
            )
        else:
            lines.append(
                f"<p>The next, {_text(group_label(runner_up))}, mean {_text(runner_up.objective.metric)} "
                f"{runner_up.objective.value:.4f}; no paired comparison: their runs have no per-image test "
                "scores on the same photographs.</p>"
            )
    return '<div class="answer" id="answer">' + "".join(lines) + "</div>"


def study_section(study: StudyView) -> str:
    """A search's study as Optuna sees it: trials by state, the best trial, the history, the importances."""
    record = study.record
    lines = [
        f"<h2>Study {_text(record.study_name)}</h2>",
        f'<p class="note">{_text(record.path)}: storage {_text(record.storage or record.journal)}, '
        f"{_text(study.direction)} {_text(record.metric)}.</p>",
        f'<p class="counts">{sum(study.counts.values())} of {record.n_trials} trial(s): '
        f"{_text(counts_text(study.counts))}.</p>",
        f'<p class="best-trial">{_text(best_text(study))}</p>',
        f'<figure><img class="study-history" alt="Optimisation history" src="{data_uri(study.history_png)}">'
        f"<figcaption>Optimisation history: {_text(record.metric)} per trial and the best so far "
        "(Optuna)</figcaption></figure>",
    ]
    if study.importances:
        rows = [
            f"<tr>{_cell(name)}{_cell(f'{value:.4f}', repr(value))}</tr>" for name, value in study.importances.items()
        ]
        lines.append("<p>Parameter importances (Optuna, PED-ANOVA):</p>")
        lines.append(_table("importances", ["parameter", "importance"], rows, sortable=True))
    else:
        why = _text(study.importances_note)
        lines.append(f'<p class="note" id="no-importances">No parameter importances: {why}</p>')
    return '<section class="study">' + "".join(lines) + "</section>"


def groups_section(groups: list[Group]) -> str:
    if not groups:
        return '<h2>Groups</h2><p class="note">No run has a readable config yet, so there is no group.</p>'
    header = group_header(groups)
    scores = shown_scores(groups)
    first_score = len(header) - len(scores)
    rows = []
    for rank, group in enumerate(groups):
        texts = group_cells(group, groups)
        values = [None] * first_score + [_sort_value(group, score) for score in scores]
        css = ' class="best"' if rank == 0 and group.objective is not None else ""
        rows.append(f"<tr{css}>" + "".join(_cell(text, value) for text, value in zip(texts, values)) + "</tr>")
    return f'<h2>Groups</h2><p class="note">{_text(ranking_line(groups))} Click a header to sort.</p>' + _table(
        "groups", header, rows, sortable=True
    )


def _sort_value(group: Group, score: str) -> str | None:
    summary = group.summaries.get(score)
    if summary is None:
        return None
    return repr(summary.min if score == "epochs" else summary.mean)


def comparison_section(groups: list[Group], differences: list[PairedDifference]) -> str:
    heading = f"<h2>Against the best group, on the same test photographs (per-image {PAIRED_PROTOCOL} scores)</h2>"
    if not differences:
        why = (
            "Only one group."
            if len(groups) < 2
            else "No comparison yet: it needs the best group and another with completed runs that wrote "
            "their per-image test scores (test_images.csv) on the same photographs."
        )
        return heading + f'<p class="note">{why}</p>'
    rows = [
        f'<tr class="{"distinguishable" if d.distinguishable else "same"}">'
        + "".join(_cell(text) for text in comparison_cells(d))
        + "</tr>"
        for d in differences
    ]
    note = (
        f'<p class="note">Mean difference from the best group and its {CONFIDENCE:.0%} paired bootstrap interval '
        "over the photographs; not distinguishable when the interval holds 0.</p>"
    )
    return heading + note + _table("comparisons", comparison_header(differences[0].best), rows, sortable=True)


def curves_section(figures: list[PageFigure]) -> str:
    shown = "".join(
        f'<figure><img class="curves" alt="{_text(f.title)}" src="{data_uri(f.png)}">'
        f"<figcaption>{_text(f.title)}</figcaption></figure>"
        for f in figures
    )
    return "<h2>Learning curves</h2>" + shown


def photographs_section(photographs: PagePhotographs) -> str:
    heading = "<h2>The best run on test photographs</h2>"
    if not photographs.pictures:
        return heading + f'<p class="note" id="no-photographs">No photographs: {_text(photographs.note)}</p>'
    legend = "".join(
        f'<span class="swatch" style="background: rgb{colour}"></span>{_text(name)}'
        for name, colour in photographs.legend.items()
    )
    pictures = "".join(
        f'<figure><img class="photograph" alt="{_text(caption)}" src="{data_uri(png)}">'
        f"<figcaption>{_text(caption)}</figcaption></figure>"
        for caption, png in photographs.pictures
    )
    return (
        heading + f'<p class="note">{_text(photographs.heading)}</p>'
        f'<p class="legend">Left: the photograph; right: the prediction inside the field of view:{legend}</p>'
        + pictures
    )


def runs_section(runs: list[Run], problems: list[str], protocol: str, varying) -> str:
    header = list(columns(protocol, varying))
    rows = ["<tr>" + "".join(_cell(text) for text in cells(run, protocol, varying)) + "</tr>" for run in runs]
    listed = ""
    if problems:
        items = "".join(f"<li>{_text(problem)}</li>" for problem in problems)
        listed = f"<details><summary>Problems ({len(problems)})</summary><ul>{items}</ul></details>"
    return f"<h2>Runs ({len(runs)})</h2>" + _table("runs", header, rows, sortable=True) + listed


def _table(name: str, header: list[str], rows: list[str], sortable: bool) -> str:
    css = ' class="sortable"' if sortable else ""
    head = "".join(f"<th>{_text(column)}</th>" for column in header)
    return (
        f'<div class="scroll"><table id="{name}"{css}><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _cell(text: str, value: str | None = None) -> str:
    data = "" if value is None else f' data-value="{_text(value)}"'
    return f"<td{data}>{_text(text)}</td>"


def _text(text: str) -> str:
    return html.escape(str(text), quote=True)


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
