"""`retina-seg-report SWEEP_DIR... [--out DIR] [--comet] [--protocol P]`: the job-id table of one or more sweeps.

Writes report.md, report.csv, report.json, val_iou_curves.png and final_iou.png into --out (default: the
first path, or the folder holding it when it is a file) and prints the table and its problems. Exit codes
(retina_seg/exit_codes.py): 0 whenever a table was written, even with failed or corrupt runs (they are marked in
it), and when a reader closes the pipe early (`| head`); 2 for an unknown option or a path that does not exist or
holds no run; 1 when the report cannot be written.
"""

import argparse
import os
import sys
from pathlib import Path

from .exit_codes import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, SUMMARY
from .records.protocols import PROTOCOLS
from .reporting.plots import FINAL_IOU_PNG, VAL_IOU_CURVES_PNG, plot_final_iou, plot_val_iou_curves
from .reporting.runs import ReportError, Run, duplicate_id_problems, read_comet_runs, read_runs
from .reporting.table import REPORT_CSV, REPORT_JSON, REPORT_MD, sort_runs, to_csv, to_json, to_markdown
from .utils.atomic import write_text_atomic


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
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        runs = sort_runs(read_comet_runs(args.paths) if args.comet else read_runs(args.paths))
    except ReportError as error:
        print(f"retina-seg-report: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    problems = [problem for run in runs for problem in run.problems] + duplicate_id_problems(runs)
    out = args.out or (args.paths[0] if args.paths[0].is_dir() else args.paths[0].parent)
    markdown = to_markdown(runs, problems, args.protocol)
    try:
        write_report(out, markdown, runs, problems, args.protocol)
    except OSError as error:
        print(f"retina-seg-report: error: cannot write the report to {out}: {error}", file=sys.stderr)
        return EXIT_FAILED
    print_to_reader(
        markdown + f"\n{len(runs)} run(s); report written to {out}/ ({REPORT_MD}, {REPORT_CSV}, {REPORT_JSON}, "
        f"{VAL_IOU_CURVES_PNG}, {FINAL_IOU_PNG})\n"
    )
    return EXIT_OK


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


def write_report(out: Path, markdown: str, runs: list[Run], problems: list[str], protocol: str) -> None:
    write_text_atomic(out / REPORT_MD, markdown)
    write_text_atomic(out / REPORT_CSV, to_csv(runs, protocol))
    write_text_atomic(out / REPORT_JSON, to_json(runs, problems, protocol))
    plot_val_iou_curves(runs, out / VAL_IOU_CURVES_PNG)
    plot_final_iou(runs, out / FINAL_IOU_PNG)


if __name__ == "__main__":
    sys.exit(main())
