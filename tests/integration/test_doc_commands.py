"""Every command the documentation shows still works as written, as far as its config goes.

Each ``retina-seg-train/-eval/-predict/-export`` command (or ``python -m retina_seg.X``) in a fenced shell block
of README.md, docs/*.md, benchmarks/README.md and sweeps/README.md is read as the shell and the CLI read it
(Hydra's own argument parser: ``-m``, ``-cd``, ``-cn``, ...) and composed by Hydra against the real conf/ (plus
its ``-cd`` folder) as the command line composes it (launch/composition.py), Hydra's own config included, and
not settled as a run settles train's (the hparams files and checkpoints a page names need not exist); a sweep
is composed once per value of each swept key, the sweep file's ``hydra.sweeper.params`` included.
``retina-seg-report`` commands are parsed by its argparse, and so are ``python -m retina_seg.bundle`` ones, each
of whose ``--test`` overrides is composed with retina-seg-eval's config.
Nothing runs: this is composition only, so a renamed option or key fails here, naming the file and line.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hydra._internal.utils import get_args_parser
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ValueType

from retina_seg.launch.composition import compose_config
from tests.helpers.environment import REPO_ROOT

DOC_FILES = [
    REPO_ROOT / "README.md",
    *sorted((REPO_ROOT / "docs").glob("*.md")),
    REPO_ROOT / "benchmarks" / "README.md",
    REPO_ROOT / "sweeps" / "README.md",
]
# Entrypoint -> the config it composes (the config_name of its @hydra.main).
HYDRA_TOOLS = {"train": "train", "eval": "eval", "predict": "predict", "export": "export"}
TOOLS = (*HYDRA_TOOLS, "report", "bundle")
SHELL_LANGUAGES = {"", "bash", "sh", "shell", "console"}
FENCE = re.compile(r"^\s*(```|~~~)\s*([\w+-]*)")
CONTROL_OPERATORS = {"&&", "||", ";", "|", "&"}
REDIRECTS = {">", ">>", "2>", "&>", "<"}
# `<run>`, `<timestamp>`: a placeholder the reader fills in; composed as a plain word.
PLACEHOLDER = re.compile(r"<[^<>\s]+>")
ENV_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


@dataclass(frozen=True)
class DocCommand:
    """One command as a document shows it: where, the text (continuations joined), which tool, its arguments."""

    path: Path
    line: int
    text: str
    tool: str
    args: tuple[str, ...]

    @property
    def where(self) -> str:
        path = self.path.relative_to(REPO_ROOT) if self.path.is_relative_to(REPO_ROOT) else self.path
        return f"{path}:{self.line}"


def shell_lines(markdown: str) -> Iterator[tuple[int, str]]:
    """(line number, logical line) of every fenced shell block; backslash continuations joined, prompts dropped."""
    fence, language, pending, start = None, "", "", 0
    for number, line in enumerate(markdown.splitlines(), start=1):
        opening = FENCE.match(line)
        if fence is None:
            if opening:
                fence, language = opening.group(1), opening.group(2).lower()
            continue
        if line.strip().startswith(fence):
            fence = None
            continue
        if language not in SHELL_LANGUAGES:
            continue
        text = line.strip().removeprefix("$ ")
        start = start or number
        if text.endswith("\\"):
            pending += text[:-1].rstrip() + " "
            continue
        yield start, pending + text
        pending, start = "", 0


def segments(text: str) -> Iterator[list[str]]:
    """The simple commands of a shell line (split at ``&&``, ``;``, ``|``), comments and redirections dropped."""
    tokens = shlex.split(PLACEHOLDER.sub("PLACEHOLDER", text), comments=True)
    current: list[str] = []
    skip_target = False
    for token in tokens:
        if skip_target:
            skip_target = False
        elif token in CONTROL_OPERATORS:
            yield current
            current = []
        elif token in REDIRECTS:
            skip_target = True
        elif token != "2>&1":
            current.append(token)
    yield current


def invocation(tokens: list[str]) -> tuple[str, list[str]] | None:
    """(tool, arguments) when the simple command runs one of our entrypoints, after any ``VAR=value`` prefix."""
    position = 0
    while position < len(tokens) and ENV_ASSIGNMENT.match(tokens[position]):
        position += 1
    program = tokens[position:]
    if program and Path(program[0]).name.startswith("retina-seg-"):
        tool = Path(program[0]).name.removeprefix("retina-seg-")
        return (tool, program[1:]) if tool in TOOLS else None
    if len(program) >= 3 and re.fullmatch(r"python[\d.]*", Path(program[0]).name) and program[1] == "-m":
        module = program[2]
        tool = module.removeprefix("retina_seg.")
        return (tool, program[3:]) if module.startswith("retina_seg.") and tool in TOOLS else None
    return None


def commands_in(path: Path) -> list[DocCommand]:
    found = []
    for line, text in shell_lines(path.read_text()):
        for tokens in segments(text):
            called = invocation(tokens)
            if called:
                found.append(DocCommand(path, line, text, called[0], tuple(called[1])))
    return found


def one_value_at_a_time(overrides: list[str]) -> list[list[str]]:
    """The jobs that together use every value of every swept key once: each swept key takes each of its values
    (an interval of a search: both its ends) while the others keep their first (fewer than the sweep's product,
    the same options composed)."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    choices = [
        [f"{o.get_key_element()}={v}" for v in swept_values(o)] if o.is_sweep_override() else [o.input_line]
        for o in parsed
    ]
    firsts = [values[0] for values in choices]
    jobs = [firsts]
    for index, values in enumerate(choices):
        jobs += [firsts[:index] + [value] + firsts[index + 1 :] for value in values[1:]]
    return jobs


def swept_values(override) -> list[str]:
    """A sweep's values; an interval (a search's) cannot be enumerated: its two ends."""
    if override.value_type == ValueType.INTERVAL_SWEEP:
        return [repr(override.value().start), repr(override.value().end)]
    return list(override.sweep_string_iterator())


def sweep_params(tool: str, config_name: str, overrides: list[str], config_dir: Path | None) -> list[str]:
    """The sweep file's own ``hydra.sweeper.params`` as overrides (the command line comes after them and wins)."""
    fixed = [o.input_line for o in OverridesParser.create().parse_overrides(overrides) if not o.is_sweep_override()]
    params = compose_config(tool, fixed, config_name, config_dir).hydra.sweeper.get("params") or {}
    return [f"{key}={value}" for key, value in params.items()]


def parse_cli(parse, args: tuple[str, ...]) -> tuple[object | None, str]:
    """argparse's namespace, or None and its error message (argparse exits on an unknown flag)."""
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        try:
            return parse(list(args)), ""
        except SystemExit:
            return None, stderr.getvalue().strip()


def composition_problems(command: DocCommand) -> list[str]:
    """What does not compose, each naming the file, line, command and the overrides of the failing job."""
    head = f"{command.where}: {command.text}"
    namespace, error = parse_cli(get_args_parser().parse_args, command.args)
    if namespace is None:
        return [f"{head}\n  not a valid command line: {error}"]
    if namespace.config_path is not None:
        return [f"{head}\n  -cp/--config-path replaces conf/ itself: show -cd DIR (an added folder) instead"]
    config_dir = None
    if namespace.config_dir is not None:
        config_dir = (REPO_ROOT / namespace.config_dir).resolve()
        if not config_dir.is_dir():
            return [f"{head}\n  config dir {namespace.config_dir} not found (commands run from the repository root)"]
    config_name = namespace.config_name or HYDRA_TOOLS[command.tool]
    try:
        overrides = list(namespace.overrides)
        if namespace.multirun:
            overrides = sweep_params(command.tool, config_name, overrides, config_dir) + overrides
        jobs = one_value_at_a_time(overrides) if namespace.multirun else [overrides]
    except Exception as failure:  # Hydra's parse and composition errors have several types
        return [f"{head}\n  {type(failure).__name__}: {failure}"]
    problems = []
    for job in jobs:
        try:
            compose_config(command.tool, job, config_name, config_dir)
        except Exception as failure:
            problems.append(f"{head}\n  overrides {job}\n  {type(failure).__name__}: {failure}")
    return problems


def report_problems(command: DocCommand) -> list[str]:
    from retina_seg.report import parse_args

    namespace, error = parse_cli(parse_args, command.args)
    return [] if namespace is not None else [f"{command.where}: {command.text}\n  {error}"]


def bundle_problems(command: DocCommand) -> list[str]:
    from retina_seg.bundle import parse_arguments

    head = f"{command.where}: {command.text}"
    namespace, error = parse_cli(parse_arguments, command.args)
    if namespace is None:
        return [f"{head}\n  {error}"]
    problems = []
    for label, overrides in namespace.test:
        try:
            compose_config("eval", ["ckpt_path=x.ckpt", *shlex.split(overrides)])
        except Exception as failure:
            problems.append(f"{head}\n  --test {label}: {type(failure).__name__}: {failure}")
    return problems


PROBLEMS = {"report": report_problems, "bundle": bundle_problems}
DOC_COMMANDS = [command for path in DOC_FILES if path.is_file() for command in commands_in(path)]


@pytest.mark.parametrize("command", DOC_COMMANDS, ids=lambda c: f"{c.where}:{c.tool}")
def test_documented_command_composes(command):
    problems = PROBLEMS.get(command.tool, composition_problems)(command)
    assert not problems, "\n".join(problems)


def test_every_entrypoint_and_document_has_commands():
    """Guards the extraction: a README whose blocks stopped being found would otherwise pass with nothing tested."""
    assert {c.tool for c in DOC_COMMANDS} == set(TOOLS)
    assert {c.path.name for c in DOC_COMMANDS if c.path.parent == REPO_ROOT} == {"README.md"}
    for page in ("configuration.md", "sweeps-and-clusters.md", "prediction-and-export.md", "comet.md"):
        assert any(c.path.name == page for c in DOC_COMMANDS), f"no command found in docs/{page}"


def test_extraction_reads_commands_as_the_shell_does(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "\n".join(
            [
                "Text with retina-seg-train model=ignored outside a block.",
                "```bash",
                "python -m pip install -e . && retina-seg-train experiment=quickstart  # a comment",
                "# a comment line: retina-seg-train model=ignored",
                "COMET_API_KEY=... retina-seg-train -m hydra/launcher=slurm \\",
                "    optimizer.lr=1e-3,1e-4",
                "```",
                "- a list item:",
                "  ```",
                "  $ python -m retina_seg.predict ckpt_path=logs/<run>/best.ckpt input='a b/' > out.log",
                "  retina-seg-report logs/sweep --out report/",
                "  ```",
                "```yaml",
                "retina-seg-eval: not a command",
                "```",
            ]
        )
    )
    found = [(c.line, c.tool, c.args) for c in commands_in(page)]
    assert found == [
        (3, "train", ("experiment=quickstart",)),
        (5, "train", ("-m", "hydra/launcher=slurm", "optimizer.lr=1e-3,1e-4")),
        (10, "predict", ("ckpt_path=logs/PLACEHOLDER/best.ckpt", "input=a b/")),
        (11, "report", ("logs/sweep", "--out", "report/")),
    ]


def test_sweeps_are_composed_once_per_value():
    jobs = one_value_at_a_time(["optimizer=adam,sgd", "data=drive", "data.batch_size=2,4,8"])
    assert jobs == [
        ["optimizer=adam", "data=drive", "data.batch_size=2"],
        ["optimizer=sgd", "data=drive", "data.batch_size=2"],
        ["optimizer=adam", "data=drive", "data.batch_size=4"],
        ["optimizer=adam", "data=drive", "data.batch_size=8"],
    ]


@pytest.mark.parametrize(
    "text, wrong",
    [
        ("retina-seg-train model=no_such_model", "no_such_model"),
        ("retina-seg-train trainer.no_such_key=1", "no_such_key"),
        ("retina-seg-train -m hydra/launcher=slurm hydra.launcher.no_such_key=1,2", "no_such_key"),
        ("retina-seg-train -m -cd sweeps -cn lr_batch_grid data=drive,no_such_data", "no_such_data"),
        ("retina-seg-train -cd no_such_folder trainer.max_epochs=1", "no_such_folder"),
        ("retina-seg-eval --multi-run split=test", "--multi-run"),
        ("retina-seg-eval -cp elsewhere split=test", "-cp"),
        ("retina-seg-train optimizer.lr=1e-3,1e-4", "--multirun"),
        ("retina-seg-report logs/sweep --no-such-flag", "--no-such-flag"),
        ("python -m retina_seg.bundle --ckpt x.ckpt --name n --retrain r --test DRIVE data=drivee", "--test DRIVE"),
    ],
)
def test_a_command_that_does_not_compose_is_named_with_its_file_and_line(tmp_path, text, wrong):
    page = tmp_path / "page.md"
    page.write_text(f"```bash\n\n{text}\n```\n")
    [command] = commands_in(page)
    problems = PROBLEMS.get(command.tool, composition_problems)(command)
    assert problems and all(p.startswith(f"{page}:3: {text}") for p in problems)
    assert wrong in "\n".join(problems)


def test_a_documented_sweep_file_composes_every_job_of_its_own_params():
    """The sweep file's list is composed too: a reference job missing from sweeps/reference/ would fail here."""
    command = DocCommand(
        REPO_ROOT / "x.md", 1, "", "train", ("-m", "-cd", "sweeps", "-cn", "lr_batch_grid", "hydra/launcher=slurm")
    )
    params = sweep_params("train", "lr_batch_grid", ["hydra/launcher=slurm"], REPO_ROOT / "sweeps")
    assert params == ["optimizer.lr=1e-3,3e-4,1e-4", "data.batch_size=2,4"]
    assert composition_problems(command) == []


LINK = re.compile(r"\]\(([^)\s]+)\)")


def heading_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces as hyphens."""
    prose = re.sub(r"^\s*```.*?^\s*```", "", markdown, flags=re.M | re.S)  # a shell comment is no heading
    headings = re.findall(r"^#+ (.+)$", prose, flags=re.M)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def test_links_between_the_pages_resolve():
    """Moving text between the README and docs/ must not leave a link to a page or heading that is gone."""
    broken = []
    for page in DOC_FILES:
        for target in LINK.findall(page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue  # a web address
            file_part, _, anchor = target.partition("#")
            linked = (page.parent / file_part).resolve() if file_part else page
            if not linked.exists():
                broken.append(f"{page.relative_to(REPO_ROOT)}: {target} (no such file)")
            elif anchor and anchor not in heading_anchors(linked.read_text()):
                broken.append(f"{page.relative_to(REPO_ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)
