"""The run lifecycle every command shares: one directory per run, written atomically.

A run lives in ``<out>/<time>_<data>_<backbone>_<method>_..._seed<k>.partial/`` while it
works and is renamed without ``.partial`` when it has finished, so a failed or killed run
never touches an earlier run's outputs and is visibly unfinished. Inside:

- ``config.yaml``: the resolved options (reusable with ``--config``; read by ``--resume``);
- ``status.json``: ``running`` (with pid, host, start time and the current phase),
  ``failed`` (with the one-line reason), ``interrupted`` or ``finished``;
- ``metrics.json`` and every other JSON: written to a temporary file, then renamed;
- ``state/<phase>.pt``: what a finished phase left behind for a resume (tensors only);
- ``checkpoints/``, ``logs/``;
- ``report.html``: the self-contained report page, written when the run finishes.

Importing this module does not import torch.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
import time
from pathlib import Path

from contextlib import contextmanager

import yaml

from ..errors import ConfigError

PARTIAL = ".partial"
RUN_DIR_ENV = "SPARSEST_RUN_DIR"  # how Lightning's DDP worker processes find rank 0's run directory


def _worker_rank() -> bool:
    """True in a DDP worker process that Lightning started by re-running the command
    (``--strategy ddp``): it shares rank 0's run directory and writes nothing to it."""
    return int(os.environ.get("LOCAL_RANK", "0") or 0) > 0 and bool(os.environ.get(RUN_DIR_ENV))


def atomic_write_text(path: Path, text: str | bytes) -> None:
    """Write ``text`` (``str``, or ``bytes`` written as they are) to ``path`` via a temporary
    file in the same folder and a rename, so a reader (or a kill) never sees half a file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if isinstance(text, bytes) else "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_out(out: str | Path) -> Path:
    """Make sure ``out`` can hold run directories (created if missing).

    Raises:
        ConfigError: ``out`` is a file, its parent chain holds a file, or it is not writable.
    """
    p = Path(out)
    if p.exists() and not p.is_dir():
        raise ConfigError(f"--out {p}: exists and is not a folder")
    try:
        p.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=p, prefix=".sparsest-write-test")
        os.close(fd)
        os.unlink(probe)
    except (OSError, FileExistsError) as e:
        raise ConfigError(f"--out {p}: cannot write there ({e.strerror or e.__class__.__name__})") from None
    return p


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_status(run_dir: Path) -> dict:
    """``status.json`` of a run directory (``{}`` when missing or unreadable)."""
    try:
        status = json.loads((Path(run_dir) / "status.json").read_text())
    except (OSError, ValueError):
        return {}
    return status if isinstance(status, dict) else {}


class RunDirectory:
    """One run's folder (module doc). Create with :meth:`create`, reopen for a resume with
    :meth:`reopen`, end with :meth:`finish` (or :meth:`fail` / :meth:`interrupt`)."""

    def __init__(self, path: Path, resumed: bool = False, primary: bool = True):
        self.path = Path(path)
        self.resumed = resumed
        self.primary = primary  # False in a DDP worker: reads, never writes
        self._phase = ""

    # ---- creation
    @classmethod
    def create(cls, out: str | Path, stem: str, config: dict) -> "RunDirectory":
        """A new ``<out>/<stem>[-k].partial`` folder, never one that exists (two runs started
        in the same second get ``stem`` and ``stem-2``); ``config.yaml`` and a ``running``
        status written.

        Raises:
            ConfigError: ``out`` is unusable (:func:`check_out`).
        """
        if _worker_rank():
            return cls(Path(os.environ[RUN_DIR_ENV]), primary=False)
        parent = check_out(out)
        i = 1
        while True:
            name = stem if i == 1 else f"{stem}-{i}"
            if not (parent / name).exists():
                try:
                    (parent / (name + PARTIAL)).mkdir()  # atomic: exactly one process wins
                    break
                except FileExistsError:
                    pass
            i += 1
        rd = cls(parent / (name + PARTIAL))
        for sub in ("checkpoints", "logs", "state"):
            (rd.path / sub).mkdir()
        atomic_write_text(rd.path / "config.yaml", yaml.safe_dump(config, sort_keys=False))
        rd.set_status("running")
        os.environ[RUN_DIR_ENV] = str(rd.path)  # inherited by DDP workers launched later
        return rd

    @classmethod
    def reopen(cls, path: str | Path) -> "RunDirectory":
        """An unfinished run directory, for ``--resume``.

        Raises:
            ConfigError: missing, a finished run (never modified), not a run directory, or
                still running in a live process.
        """
        p = Path(path)
        if _worker_rank():
            return cls(Path(os.environ[RUN_DIR_ENV]), resumed=True, primary=False)
        if not p.is_dir():
            raise ConfigError(f"--resume {p}: no such run directory")
        if not p.name.endswith(PARTIAL):
            if (p / "metrics.json").exists():
                raise ConfigError(f"--resume {p}: this run has finished; a finished run directory is never modified")
            raise ConfigError(f"--resume {p}: not an unfinished run directory (its name ends in {PARTIAL})")
        if not (p / "config.yaml").is_file():
            raise ConfigError(f"--resume {p}: no config.yaml; not a sparsest run directory")
        status = cls(p).status()
        if status.get("state") == "running" and status.get("host") == socket.gethostname() and _pid_alive(int(status.get("pid", -1))) \
                and int(status.get("pid", -1)) != os.getpid():
            raise ConfigError(f"--resume {p}: still running (pid {status['pid']}); stop it first")
        rd = cls(p, resumed=True)
        for sub in ("checkpoints", "logs", "state"):
            (rd.path / sub).mkdir(exist_ok=True)
        rd.set_status("running", resumed=True)
        os.environ[RUN_DIR_ENV] = str(rd.path)
        return rd

    def read_config(self) -> dict:
        """The run's ``config.yaml`` as a dict. Raises ConfigError if unreadable."""
        try:
            cfg = yaml.safe_load((self.path / "config.yaml").read_text())
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"{self.path / 'config.yaml'}: unreadable ({str(e).splitlines()[0]})") from None
        if not isinstance(cfg, dict):
            raise ConfigError(f"{self.path / 'config.yaml'}: not a mapping of options")
        return cfg

    # ---- files
    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    @property
    def state(self) -> Path:
        return self.path / "state"

    def write_json(self, name: str, obj) -> Path:
        """``obj`` as JSON to ``name`` in the run directory, atomically."""
        p = self.path / name
        if not self.primary:
            return p
        p.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(p, json.dumps(obj, indent=2, default=str))
        return p

    # ---- status
    def status(self) -> dict:
        return read_status(self.path)

    def set_status(self, state: str, **info) -> None:
        """Write ``status.json``: ``state`` plus pid, host, time and the current phase."""
        if not self.primary:
            return
        old = self.status()
        d = {"state": state, "pid": os.getpid(), "host": socket.gethostname(), "phase": self._phase,
             "started": old.get("started", time.strftime("%Y-%m-%d %H:%M:%S")),
             "updated": time.strftime("%Y-%m-%d %H:%M:%S"), **info}
        if old.get("resumes") is not None or info.get("resumed"):
            d["resumes"] = int(old.get("resumes", 0)) + (1 if info.get("resumed") else 0)
            d.pop("resumed", None)
        atomic_write_text(self.path / "status.json", json.dumps(d, indent=2))

    def phase(self, name: str) -> None:
        """Record the phase now running in ``status.json``."""
        self._phase = name
        self.set_status("running")

    def fail(self, reason: str) -> None:
        self.set_status("failed", reason=reason)

    def interrupt(self) -> None:
        self.set_status("interrupted", reason="interrupted (Ctrl-C); continue with --resume")

    @contextmanager
    def guard(self):
        """``with run.guard(): ...``: an exception marks the run ``failed`` with its one-line
        reason, Ctrl-C marks it ``interrupted``; both are re-raised (the CLI prints them)."""
        try:
            yield self
        except KeyboardInterrupt:
            self.interrupt()
            raise
        except BaseException as e:  # noqa: BLE001 - recorded, then re-raised
            self.fail(str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__)
            raise

    def write_report(self) -> Path | None:
        """Write ``report.html`` (:func:`sparsest.report.html.write_html_report`) when the run
        has a ``metrics.json``. Never raises: a report that cannot be built is one warning
        line on stderr, and the run goes on (``sparsest report RUN_DIR`` can build it later)."""
        if not self.primary or not (self.path / "metrics.json").is_file():
            return None
        try:
            from ..report.html import write_html_report

            return write_html_report(self.path)
        except Exception as e:  # noqa: BLE001 - the report is a convenience; the run's results are written
            reason = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
            logging.getLogger("sparsest").warning("sparsest: warning: report.html not written (%s: %s)", e.__class__.__name__, reason)
            return None

    def finish(self, cleanup: tuple[str, ...] = ()) -> Path:
        """Mark finished, write ``report.html`` (:meth:`write_report`), and rename without
        ``.partial`` (to the next free name should another run have taken it meanwhile).
        ``cleanup``: glob patterns of files to delete first (e.g. resume-only checkpoints).
        Returns the final path."""
        if not self.primary:
            return self.path.with_name(self.path.name[: -len(PARTIAL)])
        for pattern in cleanup:
            for f in self.path.glob(pattern):
                if f.is_file():
                    f.unlink()
        self._phase = "done"
        self.set_status("finished")
        self.write_report()
        stem = self.path.name[: -len(PARTIAL)]
        i = 1
        while True:
            final = self.path.with_name(stem if i == 1 else f"{stem}-{i}")
            partial = final.with_name(final.name + PARTIAL)
            if not final.exists() and (partial == self.path or not partial.exists()):
                try:
                    os.rename(self.path, final)
                    self.path = final
                    return final
                except OSError:
                    pass
            i += 1


__all__ = ["RunDirectory", "atomic_write_text", "check_out", "read_status", "PARTIAL"]
