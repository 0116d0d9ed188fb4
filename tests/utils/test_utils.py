import json

import pytest

from tascmt.cli import main
from tascmt.utils.atomic import atomic_path, write_json_atomic
from tascmt.utils.provenance import write_run_info


def test_atomic_path_leaves_nothing_on_error(tmp_path):
    dest = tmp_path / "out.nii.gz"
    with pytest.raises(RuntimeError), atomic_path(dest) as tmp:
        assert tmp.name.endswith(".nii.gz") and tmp.parent == tmp_path
        tmp.write_text("partial", encoding="utf-8")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_replaces_on_success(tmp_path):
    dest = tmp_path / "a.json"
    dest.write_text("old", encoding="utf-8")
    write_json_atomic(dest, {"x": 1})
    assert json.loads(dest.read_text(encoding="utf-8")) == {"x": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_run_info_records_config_and_versions(tmp_path):
    write_run_info(tmp_path, {"seed": 3})
    assert json.loads((tmp_path / "config.json").read_text(encoding="utf-8")) == {"seed": 3}
    prov = json.loads((tmp_path / "provenance.json").read_text(encoding="utf-8"))
    assert prov["versions"]["torch"] and prov["versions"]["numpy"]
    assert "git_commit" in prov


def test_cli_without_command_prints_help(capsys):
    assert main([]) == 1
    assert "usage: tascmt" in capsys.readouterr().out
