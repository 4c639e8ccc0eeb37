"""The run lifecycle: unique .partial directories, atomic files, status, finish, reopen."""

import json
import os
import threading

import pytest

from sparsest.engine.run import RunDirectory, atomic_write_text, check_out
from sparsest.errors import ConfigError


def test_same_stem_same_second_gets_two_directories(tmp_path):
    dirs = []

    def make():
        dirs.append(RunDirectory.create(tmp_path, "20261201-000000_x_stid_dynst_s0.3_seed0", {"a": 1}))

    threads = [threading.Thread(target=make) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    names = sorted(d.path.name for d in dirs)
    assert len(set(names)) == 4 and all(n.endswith(".partial") for n in names)
    finals = sorted(d.finish().name for d in dirs)
    assert len(set(finals)) == 4 and not any(n.endswith(".partial") for n in finals)


def test_finish_never_overwrites_a_finished_run(tmp_path):
    a = RunDirectory.create(tmp_path, "run", {})
    b_path = tmp_path / "run"  # someone finished a run of that name meanwhile
    b_path.mkdir()
    (b_path / "metrics.json").write_text("{}")
    final = a.finish()
    assert final.name == "run-2" and (b_path / "metrics.json").read_text() == "{}"


def test_status_and_config(tmp_path):
    rd = RunDirectory.create(tmp_path, "run", {"epochs": 3})
    s = rd.status()
    assert s["state"] == "running" and s["pid"] == os.getpid()
    assert rd.read_config() == {"epochs": 3}
    rd.phase("dense")
    assert rd.status()["phase"] == "dense"
    rd.fail("--data x.csv: no such file")
    assert rd.status() == {**rd.status(), "state": "failed", "reason": "--data x.csv: no such file"}
    rd.interrupt()
    assert rd.status()["state"] == "interrupted"
    with pytest.raises(ValueError):
        with rd.guard():
            raise ValueError("boom\nsecond line")
    assert rd.status()["reason"] == "boom"


def test_reopen_refuses_what_it_must_not_touch(tmp_path):
    with pytest.raises(ConfigError, match="no such run directory"):
        RunDirectory.reopen(tmp_path / "nope")
    done = RunDirectory.create(tmp_path, "done", {})
    (done.path / "metrics.json").write_text("{}")
    final = done.finish()
    before = {p.name: p.stat().st_mtime_ns for p in final.iterdir()}
    with pytest.raises(ConfigError, match="has finished"):
        RunDirectory.reopen(final)
    assert {p.name: p.stat().st_mtime_ns for p in final.iterdir()} == before
    (tmp_path / "other.partial").mkdir()
    with pytest.raises(ConfigError, match="no config.yaml"):
        RunDirectory.reopen(tmp_path / "other.partial")
    live = RunDirectory.create(tmp_path, "live", {})
    status = json.loads((live.path / "status.json").read_text())
    status["pid"] = os.getppid()  # a live process that is not us
    (live.path / "status.json").write_text(json.dumps(status))
    with pytest.raises(ConfigError, match="still running"):
        RunDirectory.reopen(live.path)


def test_atomic_write_leaves_no_temporary(tmp_path):
    atomic_write_text(tmp_path / "m.json", "{}")
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_check_out(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="not a folder"):
        check_out(tmp_path / "f")
    with pytest.raises(ConfigError, match="cannot write"):
        check_out(tmp_path / "f" / "sub")
    assert check_out(tmp_path / "new" / "deeper").is_dir()
