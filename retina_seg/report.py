"""`retina-seg-report SWEEP_DIR... [--out DIR] [--comet] [--protocol P] [--replicate-keys K,...]`: groups and runs.

Writes report.md, report.csv, groups.csv, report.json, val_iou_curves.png, loss_curves.png, final_iou.png and
report.html (the same as one self-contained page, with the best run's predictions on a few test photographs) into
--out (default: the first path, or the folder holding it when it is a file) and prints the group table
(replicates of one setting, ranked by the objective), each group against the best on the same test photographs,
the job-id table and its problems. A search's sweep folder (with study.json) adds its Optuna study: the best
trial, the trials by state, the importances, and study_history_<study name>.png. Exit codes
(retina_seg/exit_codes.py): 0 whenever a table was written, even with failed or corrupt runs (they are marked in
it), and when a reader closes the pipe early (`| head`); 2 for an unknown option or a path that does not exist or
holds no run, or a study.json whose study cannot be opened; 1 when the report cannot be written.
"""

import argparse
import os
import sys
from pathlib import Path

from .exit_codes import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, SUMMARY
from .inference.outcome_overlays import OUTCOME_COLOURS, OverlayUnavailable, outcome_overlays
from .records.groups import DEFAULT_REPLICATE_KEYS
from .records.protocols import PROTOCOLS
from .reporting.group_table import GROUPS_CSV, comparisons_json, groups_csv, groups_json, groups_markdown
from .reporting.html_page import REPORT_HTML, PageFigure, PagePhotographs, report_page
from .reporting.paired import PairedDifference, compare_with_best
from .reporting.plots import (
    FINAL_IOU_PNG,
    LOSS_CURVES_PNG,
    VAL_IOU_CURVES_PNG,
    plot_final_iou,
    plot_group_curves,
)
from .reporting.replicates import Group, best_run, group_runs, job_table_keys
from .reporting.runs import ReportError, Run, duplicate_id_problems, read_comet_runs, read_runs
from .reporting.study_view import StudyView, read_study_views, study_json, study_markdown
from .reporting.table import REPORT_CSV, REPORT_JSON, REPORT_MD, sort_runs, to_csv, to_json, to_markdown
from .utils.atomic import write_atomic, write_text_atomic

# The report's figures the page shows, with their captions.
PAGE_FIGURES = {
    VAL_IOU_CURVES_PNG: "Validation IoU per epoch at threshold 0.5 (the tables' val_IoU is at the chosen threshold)",
    LOSS_CURVES_PNG: "Training and validation loss per epoch",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="retina-seg-report", description=__doc__.splitlines()[0], epilog=SUMMARY)
    parser.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="SWEEP_DIR",
        help="sweep folders, run folders, or folders holding them (Comet archives with --comet)",
    )
    parser.add_argument("--out", type=Path, help="folder for the report files (default: the first SWEEP_DIR)")
    parser.add_argument("--comet", action="store_true", help="read Comet offline archives instead of run folders")
    parser.add_argument(
        "--protocol",
        choices=sorted(PROTOCOLS),
        default="strict",
        help="also show the test scores of this evaluation protocol (docs/results.md); strict: "
        "the table's own columns only",
    )
    parser.add_argument(
        "--replicate-keys",
        type=lambda text: tuple(key.strip() for key in text.split(",") if key.strip()),
        default=DEFAULT_REPLICATE_KEYS,
        metavar="K,...",
        help="config keys whose values may differ within a group of replicates (default: seed,data.source.split_seed)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        runs = sort_runs(read_comet_runs(args.paths) if args.comet else read_runs(args.paths))
        studies = [] if args.comet else read_study_views(args.paths)
    except ReportError as error:
        print(f"retina-seg-report: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    problems = [problem for run in runs for problem in run.problems] + duplicate_id_problems(runs)
    out = args.out or (args.paths[0] if args.paths[0].is_dir() else args.paths[0].parent)
    groups = group_runs(runs, args.replicate_keys)
    differences, pairing_problems = compare_with_best(groups)
    texts = report_texts(runs, problems + pairing_problems, groups, differences, args.protocol, studies)
    try:
        write_report(out, texts, runs, groups, studies)
        page = report_page(
            f"retina-seg report: {out.resolve()}",
            runs,
            problems + pairing_problems,
            groups,
            differences,
            [PageFigure(title, (out / name).read_bytes()) for name, title in PAGE_FIGURES.items()],
            best_run_photographs(groups),
            args.protocol,
            job_table_keys(runs),
            studies,
        )
        write_text_atomic(out / REPORT_HTML, page)
    except OSError as error:
        print(f"retina-seg-report: error: cannot write the report to {out}: {error}", file=sys.stderr)
        return EXIT_FAILED
    markdown = texts[REPORT_MD]
    print_to_reader(
        markdown + f"\n{len(runs)} run(s) in {len(groups)} group(s); report written to {out}/ ({REPORT_MD}, "
        f"{REPORT_CSV}, {GROUPS_CSV}, {REPORT_JSON}, {VAL_IOU_CURVES_PNG}, {LOSS_CURVES_PNG}, {FINAL_IOU_PNG}, "
        f"{REPORT_HTML}{''.join(f', {study.history_name}' for study in studies)})\n"
    )
    return EXIT_OK


def report_texts(
    runs: list[Run],
    problems: list[str],
    groups: list[Group],
    differences: list[PairedDifference],
    protocol: str,
    studies: list[StudyView],
) -> dict[str, str]:
    """Each text file of the report by name: in Markdown each search's study comes first, then the groups, then
    the runs; in JSON the studies and groups sit beside the rows."""
    varying = job_table_keys(runs)
    sections = {"groups": groups_json(groups), "comparisons": comparisons_json(differences)}
    if studies:
        sections["studies"] = [study_json(study) for study in studies]
    studies_markdown = "".join(study_markdown(study) for study in studies)
    runs_markdown = to_markdown(runs, problems, protocol, varying)
    return {
        REPORT_MD: studies_markdown + groups_markdown(groups, differences) + runs_markdown,
        REPORT_CSV: to_csv(runs, protocol, varying),
        GROUPS_CSV: groups_csv(groups),
        REPORT_JSON: to_json(runs, problems, protocol, varying, **sections),
    }


def print_to_reader(text: str) -> None:
    """Print ``text``; a reader that stops early (``| head``) is no error, since the report is written. stdout
    then points at devnull, so that Python's own flush at exit finds no closed pipe either (the recipe of the
    Python docs' note on SIGPIPE)."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def write_report(
    out: Path, texts: dict[str, str], runs: list[Run], groups: list[Group], studies: list[StudyView]
) -> None:
    for name, text in texts.items():
        write_text_atomic(out / name, text)
    for study in studies:
        write_atomic(out / study.history_name, lambda tmp, png=study.history_png: tmp.write_bytes(png))
    plot_group_curves(groups, out / VAL_IOU_CURVES_PNG, ("val_IoU",))
    plot_group_curves(groups, out / LOSS_CURVES_PNG, ("train_loss", "val_loss"))
    plot_final_iou(runs, out / FINAL_IOU_PNG)


def best_run_photographs(groups: list[Group]) -> PagePhotographs:
    """The best group's best run on a few test photographs, or the reason the page has none."""
    best = best_run(groups[0]) if groups else None
    if best is None:
        return PagePhotographs(note="no group has a completed run yet.")
    try:
        overlays = outcome_overlays(best.source)
    except OverlayUnavailable as error:
        return PagePhotographs(note=f"the best run, {best.job_id}, cannot be shown: {error}")
    return PagePhotographs(
        heading=f"Run {best.job_id} of group {groups[0].key} ({best.source}), its best.ckpt on the first "
        "photographs of its test split.",
        pictures=[(f"{o.name}: IoU {o.iou:.4f} at threshold {o.threshold:.2f}", o.png()) for o in overlays],
        legend=OUTCOME_COLOURS,
    )


if __name__ == "__main__":
    sys.exit(main())
