"""report.html in a real headless browser (Debian's chromium, installed by .ci/install-debian-packages.sh), on a
real tiny sweep (2 learning rates x 2 seeds, 2 epochs): the rendered page has the table rows, the curves and the best
run's photographs, sorting works, and the page logged nothing; a search's page (a real Optuna study, no training)
renders its study section. The screenshot stays in the test's tmp folder."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers.environment import require
from tests.helpers.runs import run_main
from tests.helpers.studies import STUDY_NAME, write_study
from tests.helpers.sweeps import SWEEP_RUN, multirun

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium")
# Headless, sandbox-free (CI runs as root), and nothing fetched or synced behind the page's back.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
]
# What chromium prints for each console message and uncaught error of the page.
CONSOLE = re.compile(r":CONSOLE\(?\d*\)?\]?.*|Uncaught.*")


def browse(page: Path, profile: Path, *options: str) -> subprocess.CompletedProcess:
    require(CHROMIUM is not None, "chromium is needed to render the report page (.ci/install-debian-packages.sh)")
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *options, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )


def console_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if CONSOLE.search(line)]


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory) -> Path:
    sweep = tmp_path_factory.mktemp("page") / "sweep"
    result = multirun(sweep, *SWEEP_RUN, "trainer.max_epochs=2", "optimizer.lr=1e-3,1e-4", "seed=0,1")
    assert result.returncode == 0, result.stderr[-3000:]
    report = run_main("retina_seg.report", str(sweep))
    assert report.returncode == 0, report.stderr[-3000:]
    return sweep


def test_the_rendered_page_shows_rows_curves_and_photographs_and_logs_nothing(report_dir, tmp_path):
    page = report_dir / "report.html"
    rendered = browse(page, tmp_path / "profile", "--dump-dom")
    assert rendered.returncode == 0, rendered.stderr[-3000:]
    dom = rendered.stdout
    groups = re.search(r'<table id="groups".*?</table>', dom, flags=re.S).group(0)
    assert groups.count("<tr") == 3  # the header and two groups of two seeds
    runs = re.search(r'<table id="runs".*?</table>', dom, flags=re.S).group(0)
    assert runs.count("<tr") == 5
    assert len(re.findall(r'<img class="curves"[^>]*src="data:image/png;base64,', dom)) == 2
    assert len(re.findall(r'<img class="photograph"[^>]*src="data:image/png;base64,', dom)) == 2  # n_test=2
    assert "true positive" in dom and "false negative" in dom and 'id="no-photographs"' not in dom
    assert console_lines(rendered) == []
    shot = browse(page, tmp_path / "profile", f"--screenshot={tmp_path / 'report.png'}", "--window-size=1280,2000")
    assert shot.returncode == 0 and (tmp_path / "report.png").stat().st_size > 10_000


def test_a_click_on_a_header_sorts_the_group_table(report_dir, tmp_path):
    """The page's own script, clicked twice on the learning-rate header by a line added to a copy of the page."""
    text = (report_dir / "report.html").read_text()
    click = (
        "<script>var th = Array.prototype.find.call(document.querySelectorAll('#groups th'),"
        " function (h) { return h.textContent === 'learning_rate'; }); th.click(); th.click();</script>"
    )
    clicked = tmp_path / "clicked.html"
    clicked.write_text(text.replace("</body>", click + "</body>"))
    rendered = browse(clicked, tmp_path / "profile", "--dump-dom")
    assert console_lines(rendered) == []
    table = re.search(r'<table id="groups"[^>]*>', rendered.stdout).group(0)
    assert 'data-sort-order="descending"' in table
    body = re.search(r'<table id="groups".*?<tbody>(.*?)</tbody>', rendered.stdout, flags=re.S).group(1)
    column = re.findall(r"<th[^>]*>([^<]*)</th>", rendered.stdout.split('<table id="groups"')[1])
    lr_index = column.index("learning_rate")
    rates = [float(re.findall(r"<td[^>]*>([^<]*)</td>", row)[lr_index]) for row in body.split("</tr>")[:-1]]
    assert rates == [1e-3, 1e-4]


def test_a_search_page_renders_its_study_section(tmp_path):
    """A search's sweep folder (a real Optuna study, no training): the study's section, history and importances."""
    write_study(tmp_path / "sweep", None)
    assert run_main("retina_seg.report", str(tmp_path / "sweep")).returncode == 0
    rendered = browse(tmp_path / "sweep" / "report.html", tmp_path / "profile", "--dump-dom")
    assert console_lines(rendered) == []
    section = re.search(r'<section class="study">.*?</section>', rendered.stdout, flags=re.S).group(0)
    assert f"<h2>Study {STUDY_NAME}</h2>" in section and "Best trial: 2" in section
    assert re.search(r'<img class="study-history"[^>]*src="data:image/png;base64,', section)
    assert re.search(r'<table id="importances"', section)


def test_the_console_check_sees_an_error(tmp_path):
    """The check above would notice a broken script: chromium reports an uncaught error on stderr."""
    broken = tmp_path / "broken.html"
    broken.write_text("<html><body><script>undefinedFunction();</script></body></html>")
    logged = console_lines(browse(broken, tmp_path / "profile", "--dump-dom"))
    assert any("Uncaught ReferenceError" in line for line in logged)
