"""verify_task / ``tascmt verify``: one line per problem, naming the file."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from tascmt.cli import verify as verify_cli
from tascmt.io import read_task, through_plane_axis, verify_task
from tests.io._helpers import image_data, label_data, ras_affine, write_nii
from tests.io.test_task import make_msd


def _cli(argv):
    parser = argparse.ArgumentParser()
    verify_cli.add_parser(parser.add_subparsers())
    return verify_cli.run(parser.parse_args(["verify", *argv]))


def test_clean_task_has_no_problems(tmp_path, capsys):
    root = make_msd(tmp_path / "T")
    assert verify_task(read_task(root)) == []
    assert _cli([str(root), "--no-progress"]) == 0
    assert "OK: 3 case(s)" in capsys.readouterr().out


def test_problems_are_listed(tmp_path, capsys):
    root = make_msd(tmp_path / "T", n=4)
    bad_label = label_data()
    bad_label[0, 0, 0] = 7
    write_nii(root / "labelsTr" / "la_000.nii.gz", bad_label, ras_affine())  # undeclared value 7
    write_nii(root / "labelsTr" / "la_001.nii.gz", label_data(), ras_affine(spacing=(1, 1.5, 2.0)))
    nan_img = image_data(seed=2)
    nan_img[1, 1, 1] = np.nan
    write_nii(root / "imagesTr" / "la_002.nii.gz", nan_img, ras_affine())
    problems = verify_task(read_task(root))
    assert len(problems) == 3, problems
    assert "la_000.nii.gz" in problems[0] and "[7]" in problems[0]
    assert "labelsTr/la_001.nii.gz" in problems[1] and "imagesTr/la_001.nii.gz" in problems[1]
    assert "spacing" in problems[1]
    assert "la_002.nii.gz" in problems[2] and "NaN" in problems[2]

    headers_only = verify_task(read_task(root), check_values=False)
    assert len(headers_only) == 1 and "spacing" in headers_only[0]

    assert _cli([str(root), "--no-progress"]) == 1
    out = capsys.readouterr()
    assert out.out.count("\n") == 3 and "3 problem(s)" in out.err


def test_too_few_through_plane_slices(tmp_path):
    root = tmp_path / "flat"
    aff = ras_affine(spacing=(1.0, 1.0, 5.0))
    write_nii(root / "thin_image.nii.gz", image_data((10, 12, 2)), aff)
    write_nii(root / "thin_label.nii.gz", label_data((10, 12, 2)), aff)
    problems = verify_task(read_task(root))
    assert len(problems) == 1 and "thin_image.nii.gz" in problems[0] and "only 2 slices" in problems[0]


@pytest.mark.parametrize(
    "spacing, axis", [((1, 1, 3), 2), ((3, 1, 1), 0), ((1, 2.5, 1), 1), ((1, 1, 1), 2), ((2, 2, 1), 2),
                      ((0.78, 0.78, 0.625), 2), ((1, 2, 3), 2)]
)
def test_through_plane_axis(spacing, axis):
    assert through_plane_axis(spacing) == axis


def test_through_plane_axis_largest_rule():
    assert through_plane_axis((0.78, 0.78, 0.625), rule="largest") == 1
    assert through_plane_axis((2, 2, 1), rule="largest") == 1


def test_cli_bad_folder_raises_input_error(tmp_path):
    from tascmt.errors import InputError

    with pytest.raises(InputError, match="not found"):
        _cli([str(tmp_path / "missing"), "--no-progress"])
