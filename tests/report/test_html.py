"""report.html from run directories written by hand: its sections exist exactly where their
data does, units are in the labels, nothing points to the network, bad input is one line."""

import json
import logging
import re
import subprocess
import sys

import pytest

from sparsest.cli import main
from sparsest.engine.run import RunDirectory
from sparsest.errors import ConfigError
from sparsest.report.html import write_comparison, write_html_report

from .runs import compress_run, graph_run, partial_run, study_run, train_run

FIG = re.compile(r'<figure class="sp-figure" id="([\w-]+)">')


def figures(page: str) -> set[str]:
    return set(FIG.findall(page))


def assert_offline(page: str) -> None:
    """No attribute that makes a browser fetch anything: src/href are data: URIs, in-page
    anchors or relative links to the run's files; no <link>, @import or url(...)."""
    refs = re.findall(r'\b(?:src|href|xlink:href|action|poster)\s*=\s*["\']([^"\']*)["\']', page)
    assert refs
    bad = [r for r in refs if re.match(r"\s*(https?:|//|ftp:|ws:)", r, re.I)]
    assert not bad, bad[:5]
    assert "<link" not in page and "@import" not in page and not re.search(r"url\(\s*['\"]?(https?:|//)", page)
    assert not re.search(r"<script[^>]*\bsrc=", page)
    assert "Content-Security-Policy" in page


def test_graph_run_has_every_section(tmp_path):
    d = graph_run(tmp_path)
    out = write_html_report(d)
    assert out == d / "report.html"
    page = out.read_text()
    assert figures(page) == {"fig-accuracy-vs-sparsity", "fig-sensor-map", "fig-val-vs-time", "fig-per-horizon",
                             "fig-latency-flops"}
    assert page.count("<svg") >= 5
    for sid in ("sec-summary", "sec-accuracy", "sec-sensors", "sec-training", "sec-horizon", "sec-cost", "sec-config", "sec-files"):
        assert f'id="{sid}"' in page, sid
    # physical units in the table and the axis labels; the budget and the chosen keep-set
    assert "MAE [mph]" in page and "test MAE [mph]" in page and "validation MAE [mph]" in page
    assert "GFLOPs per window" in page and "ms per batch of 64" in page and "wall-clock time since the phase began [s]" in page
    assert "budget: target sensor sparsity 0.3" in page and "chosen keep-set: 14/20 sensors" in page
    assert "graph edges (40)" in page and "switched off (6)" in page and "longitude [°]" in page
    assert 'id="sp-unfinished"' not in page and "sec-notes" not in page
    assert_offline(page)
    assert '<a href="sensors.csv">' in page  # the run's own files, relative


def test_train_run_without_sensors_or_costs(tmp_path):
    page = write_html_report(train_run(tmp_path)).read_text()
    assert figures(page) == {"fig-val-vs-time", "fig-per-horizon"}
    assert "sec-sensors" not in page and "sec-cost" not in page and "sec-accuracy" not in page
    # the log has no wall clock: metrics.json's cumulative epoch times give it
    assert "wall-clock time since the phase began [s]" in page
    assert "st-prune (R = 0.5 of the windows skipped)" in page
    assert_offline(page)


def test_compress_run(tmp_path):
    page = write_html_report(compress_run(tmp_path)).read_text()
    assert figures(page) == {"fig-accuracy-vs-sparsity", "fig-importance-maps", "fig-val-vs-time", "fig-per-horizon",
                             "fig-latency-flops"}
    assert page.count('src="data:image/png;base64,') >= 2  # the importance maps, embedded
    assert "MSE [(mm/h)²]" in page and "sec-robustness" in page and "noise σ=0.01" in page
    assert "Dyna-Pruner (chosen)" in page and "ms per batch of 64" in page
    assert_offline(page)


def test_dynapruner_study(tmp_path):
    page = write_html_report(study_run(tmp_path)).read_text()
    assert figures(page) == {"fig-accuracy-vs-sparsity", "fig-latency-flops"}
    assert "default setting dyna_sd0.7_sw0.7" in page and "MSE [(K)²]" in page


def test_grid_sensors_are_patches(tmp_path):
    page = write_html_report(graph_run(tmp_path, grid=True)).read_text()
    assert "fig-sensor-map" in figures(page) and "14 of 20 patches kept" in page
    assert "data:image/png;base64," in page  # the patch field is an image inside the SVG


def test_unfinished_run_is_reported_and_says_so(tmp_path):
    d = partial_run(tmp_path)
    page = write_html_report(d).read_text()
    assert 'id="sp-unfinished"' in page and "status running" in page
    assert figures(page) == {"fig-val-vs-time"}
    assert "metrics.json: not written yet" in page and d.name in page


def test_missing_keys_and_bad_optional_files_are_notes(tmp_path):
    d = graph_run(tmp_path)
    m = json.loads((d / "metrics.json").read_text())
    del m["latency_ms"], m["costs"]
    m["pruned"] = {"mae": 2.0}  # no rmse, no per-horizon list
    (d / "metrics.json").write_text(json.dumps(m))
    (d / "sensors.csv").write_text("nonsense\n1\n")
    page = write_html_report(d).read_text()
    assert "sec-cost" not in page and "fig-sensor-map" not in page
    assert "sensors.csv: no " in page and "sec-notes" in page
    empty = graph_run(tmp_path, name="empty")
    (empty / "metrics.json").write_text("{}")
    assert "sec-summary" in write_html_report(empty).read_text()


@pytest.mark.parametrize("case", ["missing", "file", "no-metrics", "bad-json", "not-a-dict"])
def test_bad_run_directories_are_one_line_errors(tmp_path, case):
    d = tmp_path / "run"
    if case == "file":
        d.write_text("x")
    elif case != "missing":
        d = graph_run(tmp_path, name="run")
        text = {"no-metrics": None, "bad-json": "{not json", "not-a-dict": "[1, 2]"}[case]
        if text is None:
            (d / "metrics.json").unlink()
        else:
            (d / "metrics.json").write_text(text)
    with pytest.raises(ConfigError) as e:
        write_html_report(d)
    msg = str(e.value)
    assert "\n" not in msg and str(d) in msg
    if case in ("no-metrics", "bad-json", "not-a-dict"):
        assert "metrics.json" in msg


def test_comparison_page(tmp_path):
    a = graph_run(tmp_path, name="a", sparsity=0.3, mae=2.0)
    b = graph_run(tmp_path, name="b", sparsity=0.5, mae=2.4, seed=1)
    c = train_run(tmp_path, name="c")
    out = write_comparison([a, b, c], tmp_path / "cmp.html")
    page = out.read_text()
    assert figures(page) == {"fig-cmp-val-vs-time"}  # a train run's R is no sensor sparsity: no shared accuracy axis
    assert "#1" in page and "#3" in page and "2.1 mph" in page and "st-prune" in page
    assert_offline(page)
    two = write_comparison([a, b], tmp_path / "two.html").read_text()
    assert figures(two) == {"fig-cmp-val-vs-time", "fig-cmp-accuracy"}


def run_cli(args, capsys):
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_report(tmp_path, capsys, monkeypatch):
    a, b = graph_run(tmp_path, name="a"), compress_run(tmp_path, name="b")
    code, out, err = run_cli(["report", str(a)], capsys)
    assert code == 0 and (a / "report.html").exists() and "report.html" in out
    code, out, err = run_cli(["report", str(a), "--out", str(tmp_path / "a.html")], capsys)
    assert code == 0 and 'href="a/sensors.csv"' in (tmp_path / "a.html").read_text()
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(["report", str(a), str(b)], capsys)
    assert code == 0 and (tmp_path / "report.html").exists()
    for args, needle in ((["report", str(tmp_path / "nope")], "no such run directory"),
                         (["report", str(a / "metrics.json")], "not a directory"),
                         (["report", str(tmp_path)], "no metrics.json"),
                         (["report", str(a), str(b), "--out", str(a / "x.html")], "inside run directory"),
                         (["report", str(a), "--out", str(a / "sensors.csv")], "inside run directory"),
                         (["report", str(a), str(b), "--out", str(tmp_path)], "is a folder"),
                         (["report", str(a), str(b), "--out", str(tmp_path / "no" / "x.html")], "does not exist")):
        code, out, err = run_cli(args, capsys)
        lines = [line for line in err.strip().splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1 and needle in lines[0] and "Traceback" not in err, (args, err)


def test_cli_report_entry_point_has_no_traceback(tmp_path):
    r = subprocess.run([sys.executable, "-m", "sparsest", "report", str(tmp_path / "nope")], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "nope" in r.stderr


def test_every_finished_run_writes_its_report(tmp_path):
    src = graph_run(tmp_path / "src")
    rd = RunDirectory.create(tmp_path / "out", "20261201-000000_toy_stid_dynst-paper_s0.3_seed0", {"scheme": "dynst-paper"})
    for f in ("metrics.json", "sensors.csv", "graph_edges.csv"):
        (rd.path / f).write_bytes((src / f).read_bytes())
    final = rd.finish()
    page = (final / "report.html").read_text()
    assert not final.name.endswith(".partial") and 'id="sp-unfinished"' not in page and final.name in page
    assert ".partial" not in page.split("<main>")[0]


def test_a_failing_report_never_fails_the_run(tmp_path, monkeypatch, caplog):
    import sparsest.report.html as html

    def boom(*a, **k):
        raise RuntimeError("figure exploded\nsecond line")

    monkeypatch.setattr(html, "write_html_report", boom)
    rd = RunDirectory.create(tmp_path, "run", {})
    (rd.path / "metrics.json").write_text("{}")
    with caplog.at_level(logging.WARNING, logger="sparsest"):
        final = rd.finish()
    assert final == tmp_path / "run" and rd.status()["state"] == "finished" and not (final / "report.html").exists()
    (rec,) = [r for r in caplog.records if "report.html not written" in r.getMessage()]
    assert "figure exploded" in rec.getMessage() and "\n" not in rec.getMessage()
    assert RunDirectory.create(tmp_path, "bare", {}).finish().joinpath("status.json").exists()  # no metrics: no report


def test_a_real_tiny_run_writes_its_report(tmp_path, capsys):
    """``sparsest run`` on the built-in data (random keep-set, two short epochs): the
    finished directory has report.html with the sensor map, graph edges and a timed curve."""
    code, out, err = run_cli(["run", "--scheme", "random", "--epochs", "2", "--patience", "1", "--limit-train-batches", "3",
                              "--bench-repeats", "1", "--out", str(tmp_path)], capsys)
    assert code == 0, err
    (run_dir,) = tmp_path.iterdir()
    assert (run_dir / "graph_edges.csv").exists()
    page = (run_dir / "report.html").read_text()
    assert {"fig-sensor-map", "fig-val-vs-time", "fig-accuracy-vs-sparsity", "fig-latency-flops"} <= figures(page)
    assert "wall-clock time since the phase began [s]" in page and "degC" in page and "graph edges (" in page
    assert "time_s" in (run_dir / "logs" / "dense" / "metrics.csv").read_text().splitlines()[0]
    assert_offline(page)
