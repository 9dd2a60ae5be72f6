"""The HTML report opened in headless Chromium (Debian's ``chromium``; .ci/run installs it):
no horizontal page overflow at desktop, tablet and phone widths (wide tables scroll inside their
own box), and a full-page screenshot renders."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from conftest import ROOT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is not installed (apt-get install chromium)"
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The probe is the test's own: it writes the page's scroll width and the window's width into the
# title, which --dump-dom prints (the report itself has no script).
PROBE = (
    '<script>document.title = "W" + document.documentElement.scrollWidth + "x" + '
    "window.innerWidth;</script></body>"
)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    from click.testing import CliRunner

    from ivigmeta.cli import cli

    out = tmp_path_factory.mktemp("browser") / "report"
    result = CliRunner().invoke(
        cli,
        [
            "report",
            str(ROOT / "studies.csv"),
            "-o",
            str(out),
            "--published",
            str(ROOT / "published.toml"),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.stderr
    html = (out / "report.html").read_text()
    (out / "probe.html").write_text(html.replace("</body>", PROBE))
    return out


def _chromium(args, profile):
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("width", [1280, 900, 420])
def test_no_horizontal_page_overflow(page, tmp_path, width):
    done = _chromium(
        [f"--window-size={width},900", "--dump-dom", (page / "probe.html").as_uri()],
        tmp_path / "profile",
    )
    m = re.search(r"<title>W(\d+)x(\d+)</title>", done.stdout)
    assert m, done.stderr[-2000:]
    scroll, inner = int(m.group(1)), int(m.group(2))
    assert scroll <= inner, f"the page is {scroll}px wide in a {inner}px window"


def test_full_page_screenshot(page, tmp_path):
    shot = tmp_path / "report.png"
    done = _chromium(
        ["--window-size=1200,3000", f"--screenshot={shot}", (page / "report.html").as_uri()],
        tmp_path / "profile",
    )
    assert shot.exists(), done.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width = int.from_bytes(data[16:20], "big")
    assert width == 1200 and len(data) > 50_000  # tables, figures: not a blank page
