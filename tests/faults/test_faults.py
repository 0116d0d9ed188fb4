"""Fault injection: a full disk, unwritable outputs, damaged checkpoints, kills, concurrent runs, SIGTERM.

Each test checks the exit status, that the message is one line without a traceback, and what is left on
disk. Nothing needs root; since the suite runs as root (where ``chmod`` does not stop writes), unwritable
folders are paths that run through a file, or a read-only file system simulated by making file creation
fail with EROFS. A full disk is injected where it really happens: the preallocation of the cache's arrays
(``posix_fallocate`` → ENOSPC), the free-space query, and a real file-size limit (``RLIMIT_FSIZE``) in a
subprocess.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tascmt.cli import main
from tascmt.data.prepare import prepare_dataset
from tascmt.data.synth import make_synthetic_task
from tascmt.errors import ConfigError
from tascmt.training.api import resume, train
from tascmt.training.logs import read_csv
from tascmt.training.signals import TrainingInterrupted
from tests.training._standins import StandinTrainer, standin_config

REPO = Path(__file__).resolve().parents[2]
TRAIN = ["--size", "tiny", "--override", "img_size=32", "--num-workers", "0", "--device", "cpu",
         "--no-progress", "--no-tensorboard"]


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'src'}", "OMP_NUM_THREADS": "1"}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        env.pop(key, None)
    return env


def _one_line(err: str, command: str) -> str:
    """The CLI's error output: exactly one line, no traceback."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    assert lines[0].startswith(f"tascmt {command}: error: "), err
    return lines[0]


def _debris(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture(scope="module")
def task(tmp_path_factory) -> Path:
    return make_synthetic_task(tmp_path_factory.mktemp("task") / "task", "heart", n_cases=6, size=32,
                               n_slices=12, seed=3)


@pytest.fixture(scope="module")
def cache(task, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cache") / "cache"
    prepare_dataset(task, out, size=32, progress=False, verbose=False)
    return out


@pytest.fixture(scope="module")
def run(cache, tmp_path_factory) -> Path:
    """A finished two-epoch run: ``last/``, ``last.prev/`` (the first epoch's end) and ``best/``."""
    out = tmp_path_factory.mktemp("run") / "run"
    assert main(["train", "--cache", str(cache), "--out", str(out), "--epochs", "2", "--steps-per-epoch", "2",
                 *TRAIN]) == 0
    assert (out / "last").is_dir() and (out / "last.prev").is_dir() and (out / "best").is_dir()
    return out


# ----------------------------------------------------------------------------------------------- prepare
def _prepare(task: Path, out: Path, *extra: str) -> int:
    return main(["prepare", str(task), str(out), "--size", "32", "--no-progress", *extra])


def test_prepare_refuses_to_start_without_the_free_space(task, tmp_path, monkeypatch, capsys):
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage._replace(free=5 * 2**20))
    assert _prepare(task, tmp_path / "cache") == 2
    line = _one_line(capsys.readouterr().err, "prepare")
    assert "not enough free space" in line and str(tmp_path) in line
    assert "needed" in line and f"5.0 MiB free ({5 * 2**20} bytes)" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written, no lock file left


@pytest.mark.skipif(not hasattr(os, "posix_fallocate"), reason="no posix_fallocate on this platform")
def test_prepare_full_disk_at_allocation_is_one_error_and_removes_the_partial_cache(task, tmp_path,
                                                                                     monkeypatch, capsys):
    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", full)
    assert _prepare(task, tmp_path / "cache") == 2
    line = _one_line(capsys.readouterr().err, "prepare")
    assert "No space left on device" in line and "partial cache was removed" in line and "_img.npy" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_prepare_under_a_file_size_limit_fails_cleanly(task, tmp_path):
    """A real write failure (EFBIG) in a subprocess: the memory-mapped arrays are larger than the limit."""
    import resource

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes fail with EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (32 * 1024, 32 * 1024))

    out = tmp_path / "cache"
    proc = subprocess.run([sys.executable, "-m", "tascmt", "prepare", str(task), str(out), "--size", "32",
                           "--no-progress"], env=_env(), capture_output=True, text=True, timeout=120,
                          preexec_fn=limit)
    assert proc.returncode == 2, proc.stderr
    line = _one_line(proc.stderr, "prepare")
    assert "File too large" in line and "partial cache was removed" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == []


_KILL_BETWEEN_RENAMES = """
import os, signal, sys
from pathlib import Path
replace = os.replace
def killing_replace(src, dst, *args, **kwargs):
    if Path(src).name.startswith(".cache.tmp-") and Path(dst).name == "cache":
        os.kill(os.getpid(), signal.SIGKILL)  # the old cache is already moved away: the worst moment
    return replace(src, dst, *args, **kwargs)
os.replace = killing_replace
from tascmt.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_prepare_killed_between_the_swap_renames_is_recovered(task, tmp_path, capsys):
    out = tmp_path / "cache"
    assert _prepare(task, out) == 0
    manifest = (out / "manifest.json").read_text(encoding="utf-8")
    proc = subprocess.run([sys.executable, "-c", _KILL_BETWEEN_RENAMES, "prepare", str(task), str(out),
                           "--size", "24", "--no-progress"], env=_env(), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert not out.exists()  # the kill left no cache at the output path ...
    left = _debris(tmp_path)
    assert any(n.startswith(".cache.old-") for n in left) and any(n.startswith(".cache.tmp-") for n in left)
    capsys.readouterr()
    assert _prepare(task, out) == 0  # ... the next prepare puts the old one back and reuses it
    captured = capsys.readouterr()
    assert "restored the cache" in captured.err and "up to date" in captured.out
    assert (out / "manifest.json").read_text(encoding="utf-8") == manifest
    assert _debris(tmp_path) == []  # stale temporary and old folders removed, no lock file left


def test_outputs_that_cannot_be_written_fail_before_any_work(task, cache, run, tmp_path, monkeypatch,
                                                            capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder", encoding="utf-8")
    image = next((task / "imagesTr").iterdir())
    cases = [
        (["prepare", str(task), str(blocker / "cache"), "--size", "32", "--no-progress"], "prepare",
         "is a file, not a folder"),
        (["train", "--cache", str(cache), "--out", str(blocker / "run"), *TRAIN], "train", "Not a directory"),
        (["evaluate", "-o", str(blocker / "eval"), "-m", str(run / "best"), "--cache", str(cache)],
         "evaluate", "is a file, not a folder"),
        (["predict", "-i", str(image), "-o", str(blocker / "pred"), "-m", str(tmp_path / "no_model")],
         "predict", "is a file, not a folder"),
    ]
    for argv, command, words in cases:
        assert main(argv) == 2, argv
        line = _one_line(capsys.readouterr().err, command)
        assert words in line and str(blocker) in line, line
    # a read-only file system (simulated: file creation fails with EROFS; chmod does not stop root)
    import tempfile

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    out = tmp_path / "ro" / "eval"
    assert main(["evaluate", "-o", str(out), "-m", str(run / "best"), "--cache", str(cache)]) == 2
    line = _one_line(capsys.readouterr().err, "evaluate")
    assert "Read-only file system" in line and str(out) in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]  # nothing was created anywhere


def test_a_fresh_run_that_fails_at_setup_leaves_no_folder(cache, tmp_path, capsys):
    assert main(["train", "--cache", str(cache), "--out", str(tmp_path / "run"), "--model", "nope",
                 *TRAIN]) == 2
    assert "nope" in _one_line(capsys.readouterr().err, "train")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------ damaged checkpoints
def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garble(path: Path) -> None:
    path.write_bytes(b"\x00garbage\xff" * 64)


def _edit_json(path: Path, change) -> None:
    path.write_text(json.dumps(change(json.loads(path.read_text(encoding="utf-8")))), encoding="utf-8")


def _drop_rng(meta: dict) -> dict:
    del meta["state"]["rng"]
    return meta


DAMAGE = {
    "truncated train_state.safetensors": (lambda r: _truncate(r / "last" / "train_state.safetensors"),
                                          "last/train_state.safetensors"),
    "garbage train_state.safetensors": (lambda r: _garble(r / "last" / "train_state.safetensors"),
                                        "last/train_state.safetensors"),
    "train_state.json is []": (lambda r: (r / "last" / "train_state.json").write_text("[]", encoding="utf-8"),
                               "last/train_state.json"),
    "train_state.json without state": (
        lambda r: _edit_json(r / "last" / "train_state.json", lambda m: {k: v for k, v in m.items()
                                                                         if k != "state"}),
        "last/train_state.json"),
    "garbage model.safetensors": (lambda r: _garble(r / "last" / "model.safetensors"), "last/model.safetensors"),
    "state without rng": (lambda r: _edit_json(r / "last" / "train_state.json", _drop_rng),
                          "last/train_state.json"),
    "config.json with a string for a number": (
        lambda r: _edit_json(r / "config.json", lambda c: {**c, "lr": "fast"}), "config.json"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_checkpoint_is_a_one_line_error_naming_the_file(run, tmp_path, capsys, damage):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    shutil.rmtree(copy / "last.prev")  # nothing to fall back to
    hurt, name = DAMAGE[damage]
    hurt(copy)
    before = sorted(p.relative_to(copy) for p in copy.rglob("*"))
    capsys.readouterr()
    assert main(["train", "--resume", str(copy)]) == 2
    line = _one_line(capsys.readouterr().err, "train")
    assert str(copy / name) in line, line
    assert sorted(p.relative_to(copy) for p in copy.rglob("*")) == before  # nothing removed or added


def test_resume_falls_back_to_last_prev_when_last_is_damaged(run, tmp_path, capsys):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    _garble(copy / "last" / "train_state.safetensors")
    capsys.readouterr()
    assert main(["train", "--resume", str(copy)]) == 0
    err = capsys.readouterr().err
    assert "warning:" in err and str(copy / "last" / "train_state.safetensors") in err
    assert str(copy / "last.prev") in err and "Traceback" not in err
    # the second epoch was trained again from the first epoch's checkpoint, and logged once
    assert [int(r["step"]) for r in read_csv(copy / "steps.csv")] == [1, 2, 3, 4]
    assert [int(r["epoch"]) for r in read_csv(copy / "epochs.csv")] == [1, 2]
    state = json.loads((copy / "last" / "train_state.json").read_text(encoding="utf-8"))["state"]["loop"]
    assert (state["epoch"], state["global_step"]) == (2, 4)
    assert (copy / "last.damaged").is_dir()  # kept for inspection, out of the rotation
    prev = json.loads((copy / "last.prev" / "train_state.json").read_text(encoding="utf-8"))
    assert prev["state"]["loop"]["global_step"] == 2  # the good fallback is still the previous save


# ------------------------------------------------------------------- concurrent runs, signals, pre-emption
def _wait_for_steps(steps_csv: Path, proc: subprocess.Popen, n: int, timeout: float = 150.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            rows = read_csv(steps_csv)
        except (OSError, ValueError, KeyError):
            rows = []
        if len(rows) >= n:
            return len(rows)
        time.sleep(0.1)
    raise AssertionError(f"training did not reach {n} steps (exit status {proc.poll()})")


def test_second_training_is_refused_and_sigterm_saves_last_then_resume_continues(cache, tmp_path, capsys):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "tascmt", "train", "--cache", str(cache), "--out", str(out), "--epochs", "1",
           "--steps-per-epoch", "2000", *TRAIN]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_steps(out / "steps.csv", proc, 3)
        # a second training on the same folder is refused, whether fresh or resumed
        assert main(["train", "--cache", str(cache), "--out", str(out), *TRAIN]) == 2
        line = _one_line(capsys.readouterr().err, "train")
        assert f"run folder {out} is in use by another process (pid {proc.pid})" in line
        assert main(["train", "--resume", str(out)]) == 2
        assert f"pid {proc.pid}" in _one_line(capsys.readouterr().err, "train")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "stopped by SIGTERM" in err and f"--resume {out}" in err and "Traceback" not in err
    loop = json.loads((out / "last" / "train_state.json").read_text(encoding="utf-8"))["state"]["loop"]
    steps = [int(r["step"]) for r in read_csv(out / "steps.csv")]
    n = loop["global_step"]
    assert n >= 3 and loop["step_in_epoch"] == n and loop["epoch"] == 0  # saved mid-epoch, at its last step
    assert steps == list(range(1, n + 1))  # every step logged once: the refused runs wrote nothing
    assert not (out / "best").exists()  # a signal saves last/ only (no validation pass)
    assert _debris(out) == []  # no lock file, no temporary checkpoint folder
    assert main(["train", "--resume", str(out), "--max-steps", str(n + 2)]) == 0
    assert [int(r["step"]) for r in read_csv(out / "steps.csv")] == list(range(1, n + 3))


class _SelfInterrupting(StandinTrainer):
    """Sends itself SIGINT during step 3 (as Ctrl-C would)."""

    def train_step(self, batch):
        if self.state.global_step == 2:
            signal.raise_signal(signal.SIGINT)
        return super().train_step(batch)


def test_sigint_finishes_the_step_saves_last_and_resumes_exactly(tmp_path):
    cfg = standin_config(tmp_path / "run", epochs=2, model_overrides={"n_train": 12})
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # a test runner may ignore SIGINT
    try:
        with pytest.raises(TrainingInterrupted) as info:
            train(cfg, trainer_cls=_SelfInterrupting)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored
    finally:
        signal.signal(signal.SIGINT, previous)
    assert info.value.exit_code == 130 and "SIGINT" in str(info.value)
    loop = json.loads((tmp_path / "run" / "last" / "train_state.json").read_text(encoding="utf-8"))
    assert loop["state"]["loop"]["global_step"] == 3  # the step in progress was finished, then saved
    result = resume(tmp_path / "run", trainer_cls=StandinTrainer)
    ref = train(cfg.replace(out_dir=str(tmp_path / "ref")), trainer_cls=StandinTrainer)
    assert result.global_step == ref.global_step
    got, want = (load_file(str(Path(r.run_dir) / "last" / "model.safetensors")) for r in (result, ref))
    for k in want:  # the interrupted and resumed run is the uninterrupted one
        torch.testing.assert_close(got[k], want[k], rtol=0, atol=1e-6, msg=k)


# ------------------------------------------------------------------------------------------------- demo
def test_demo_refuses_a_folder_it_did_not_create(tmp_path, capsys):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("keep me", encoding="utf-8")
    assert main(["demo", "-o", str(user), "--no-progress"]) == 2
    line = _one_line(capsys.readouterr().err, "demo")
    assert "notes.txt" in line and str(user) in line
    assert sorted(p.name for p in user.iterdir()) == ["notes.txt"]


def test_demo_never_deletes_what_it_did_not_create_in_its_run_folder(tmp_path):
    from types import SimpleNamespace

    from tascmt.demo.run import _train_or_reuse, claim_demo_folder
    from tascmt.training import TrainConfig

    out = tmp_path / "demo"
    claim_demo_folder(out)
    run_dir = out / "run"
    (run_dir / "last").mkdir(parents=True)
    (run_dir / "config.json").write_text("{}", encoding="utf-8")
    (run_dir / "notes.txt").write_text("keep me", encoding="utf-8")
    cfg = TrainConfig(cache_dir=str(out / "cache"), out_dir=str(run_dir), device="cpu")
    calls = []

    def fake_train(c):
        calls.append(c)
        (run_dir / "best").mkdir()
        return SimpleNamespace(run_dir=run_dir, best_checkpoint=run_dir / "best", stop_reason="epochs",
                               global_step=1)

    with pytest.raises(ConfigError, match=r"notes\.txt"):
        _train_or_reuse(cfg, fake_train)
    assert sorted(p.name for p in run_dir.iterdir()) == ["config.json", "last", "notes.txt"] and not calls
    (run_dir / "notes.txt").unlink()  # only what a training run writes is left: that is replaced
    _train_or_reuse(cfg, fake_train)
    assert calls and sorted(p.name for p in run_dir.iterdir()) == ["best", "demo_done.json"]
