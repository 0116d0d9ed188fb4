"""``tascmt prepare --labels``: values outside 1..255 or not declared by the task are one clear error."""

from __future__ import annotations

import pytest

import tascmt.data.prepare
from tascmt.cli import main
from tests.io._helpers import image_data, label_data, ras_affine, write_nii
from tests.io.test_task import make_msd


@pytest.fixture
def msd_task(tmp_path):
    return make_msd(tmp_path / "Task02_Heart", n=2, test=0)  # labels 0 background, 1 left atrium, 2 other


@pytest.fixture
def calls(monkeypatch):
    """Replace the cache builder: record what the CLI would pass it."""
    seen: list[dict] = []

    def fake_prepare(task, out, **kw):
        seen.append({"task": task, "out": out, **kw})

    monkeypatch.setattr(tascmt.data.prepare, "prepare_dataset", fake_prepare)
    return seen


@pytest.mark.parametrize(
    "value, words",
    [
        ("-1", ("-1", "1 to 255")),
        ("300", ("300", "1 to 255")),
        ("0", ("out of range: 0", "background")),
        ("1,256", ("out of range: 256",)),
        (",", ("at least one",)),
        ("3", ("not a label of task 'Heart'", ": 3", "1 (left atrium), 2 (other)")),
        ("1,7", ("not a label", ": 7")),
    ],
)
def test_bad_labels_exit_2_with_one_message(msd_task, tmp_path, capsys, calls, value, words):
    out = tmp_path / "cache"
    assert main(["prepare", str(msd_task), str(out), "--labels", value, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("tascmt prepare: error: --labels"), err
    assert "Traceback" not in err
    for w in words:
        assert w in err, (w, err)
    assert calls == [] and not out.exists()


def test_declared_labels_pass(msd_task, tmp_path, calls):
    assert main(["prepare", str(msd_task), str(tmp_path / "c"), "--labels", "2,1", "--no-progress"]) == 0
    assert calls[0]["label_values"] == [2, 1]


def test_no_labels_option_is_not_checked(msd_task, tmp_path, calls):
    assert main(["prepare", str(msd_task), str(tmp_path / "c"), "--no-progress"]) == 0
    assert calls[0]["label_values"] is None


def test_plain_folder_has_no_declared_labels(tmp_path, capsys, calls):
    root = tmp_path / "plain"
    write_nii(root / "p1_image.nii.gz", image_data(), ras_affine())
    write_nii(root / "p1_label.nii.gz", label_data(), ras_affine())
    assert main(["prepare", str(root), str(tmp_path / "c"), "--labels", "7", "--no-progress"]) == 0
    assert calls[0]["label_values"] == [7]
    assert main(["prepare", str(root), str(tmp_path / "c"), "--labels", "300", "--no-progress"]) == 2
    assert "1 to 255" in capsys.readouterr().err
