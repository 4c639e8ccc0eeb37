"""report.html in a real browser (headless Chromium, Debian package ``chromium``; ``.ci/run``
installs it): no script error, every figure in the DOM, a screenshot that is not blank, and
no request leaves the page."""

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

from sparsest.report.html import write_comparison, write_html_report

from .runs import compress_run, graph_run, train_run

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (apt-get install chromium)")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--hide-scrollbars", "--mute-audio",
         # any host name resolves to nothing: a page that tried the network would log net:: errors
         "--host-resolver-rules=MAP * ~NOTFOUND"]
# what Chromium logs for a script error, a blocked (CSP) or failed load
PROBLEMS = re.compile(r"Uncaught|SyntaxError|ReferenceError|TypeError|Refused to|Content Security Policy|net::ERR_|"
                      r"Failed to load resource", re.I)


def chromium(page: Path, *args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="sparsest-chromium-") as profile:
        return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args,
                               page.resolve().as_uri()], capture_output=True, text=True, timeout=90)


def console_problems(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ("CONSOLE" in line or "net::" in line) and PROBLEMS.search(line)]


def check_dom(page: Path, expected: set[str]) -> str:
    r = chromium(page, "--dump-dom")
    assert r.returncode == 0, r.stderr[-2000:]
    dom = r.stdout
    assert not console_problems(r.stderr), console_problems(r.stderr)
    # the page's own scripts ran to the end: the first records any error, the last marks the page ready
    root = re.search(r"<html[^>]*>", dom).group(0)
    assert 'data-sp-ready="1"' in root and "data-sp-error" not in root, root
    assert f'data-sp-figures="{len(expected)}"' in root, root
    found = re.findall(r'<figure class="sp-figure" id="([\w-]+)">(.*?)</figure>', dom, re.S)
    assert {fid for fid, _ in found} == expected
    for fid, body in found:
        assert "<svg" in body or "<img" in body, fid
        assert re.search(r"<(path|use|image|img)\b", body), fid  # drawn content, not an empty frame
    return dom


def test_run_report_in_a_browser(tmp_path):
    page = write_html_report(graph_run(tmp_path))
    check_dom(page, {"fig-accuracy-vs-sparsity", "fig-sensor-map", "fig-val-vs-time", "fig-per-horizon", "fig-latency-flops"})
    png = tmp_path / "shot.png"
    r = chromium(page, f"--screenshot={png}", "--window-size=1280,2000")
    assert png.exists(), r.stderr[-2000:]
    import matplotlib.image as mpimg

    img = mpimg.imread(png)[..., :3]
    assert img.shape[:2] == (2000, 1280)
    colours = np.unique((img.reshape(-1, 3) * 255).astype(np.uint8), axis=0)
    assert img.std() > 0.05 and len(colours) > 200, (img.std(), len(colours))
    # something is drawn in the figure area too, not only the page header
    assert img[600:1900].std() > 0.05


def test_compress_and_comparison_pages_in_a_browser(tmp_path):
    c = compress_run(tmp_path)
    check_dom(write_html_report(c), {"fig-accuracy-vs-sparsity", "fig-importance-maps", "fig-val-vs-time", "fig-per-horizon",
                                     "fig-latency-flops"})
    a, b = graph_run(tmp_path, name="a"), graph_run(tmp_path, name="b", sparsity=0.5, seed=1)
    check_dom(write_comparison([a, b], tmp_path / "cmp.html"), {"fig-cmp-val-vs-time", "fig-cmp-accuracy"})
    check_dom(write_comparison([a, train_run(tmp_path)], tmp_path / "cmp2.html"), {"fig-cmp-val-vs-time"})


def test_the_browser_checks_can_fail(tmp_path):
    """A page with a script error and a network image: both show up in the checks above."""
    from sparsest.report.html import CSP, HEAD_SCRIPT

    bad = tmp_path / "bad.html"
    bad.write_text(f'<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" content="{CSP}">'
                   f'<script>{HEAD_SCRIPT}</script></head><body><img src="http://example.com/x.png"><script>nope();</script>'
                   "</body></html>")
    r = chromium(bad, "--dump-dom")
    problems = console_problems(r.stderr)
    assert any("nope" in p for p in problems) and any("example.com" in p for p in problems), r.stderr[-2000:]
    assert "data-sp-error" in re.search(r"<html[^>]*>", r.stdout).group(0)
