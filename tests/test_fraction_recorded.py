"""benchmarks/fraction_recorded.py: the per-seed results it plots pair up, and give the intervals the README and
BENCHMARKS.md quote (issue 13)."""

import sys

import pytest

from support.scripts import load_script

recorded = load_script("fraction_recorded")


def test_every_recorded_row_has_one_dss_run_per_standard_run():
    for row in recorded.RECORDED:
        assert len(row.dss) == len(row.standard) >= 2, row.source


def test_the_chat_recipe_at_25_percent_gives_the_quoted_interval_over_its_7_seeds():
    row = next(row for row in recorded.RECORDED if row.fraction == 0.25)
    mean, low, high = recorded.mean_interval(row.gaps)
    assert (round(mean, 2), round(low, 2), round(high, 2)) == (2.5, -2.19, 7.19)


def test_the_chat_recipe_at_12_5_percent_gives_the_quoted_difference_over_its_seeds():
    row = next(row for row in recorded.RECORDED if row.fraction == 0.125)
    mean, low, high = recorded.mean_interval(row.gaps)
    assert (round(mean, 2), round(low, 2), round(high, 2)) == (-0.36, -4.68, 3.96)


def test_a_row_with_unpaired_seeds_is_refused_naming_its_source():
    with pytest.raises(ValueError, match="somewhere: 2 standard seeds against 1 dss seeds"):
        recorded.Recorded(0.5, recorded.CHAT, "somewhere", standard=(30.0, 31.0), dss=(32.0,))


def test_one_seed_has_no_interval_and_two_seeds_use_students_t_with_one_degree_of_freedom():
    assert recorded.mean_interval([3.0]) == (3.0, 3.0, 3.0)
    mean, low, high = recorded.mean_interval([1.0, 3.0])
    assert mean == 2.0 and high - mean == pytest.approx(12.706, abs=1e-3)


def test_the_plot_is_written(tmp_path):
    path = recorded.draw(recorded.RECORDED, tmp_path / "fraction.png")
    assert path.stat().st_size > 10_000


def test_the_plot_goes_into_a_new_folder_and_an_unwritable_place_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["fraction_recorded.py", "--out", str(tmp_path / "new" / "fraction.png")])
    recorded.main()
    assert (tmp_path / "new" / "fraction.png").stat().st_size > 10_000
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setattr(sys, "argv", ["fraction_recorded.py", "--out", str(tmp_path / "file" / "fraction.png")])
    with pytest.raises(SystemExit, match=r"cannot write .*file/fraction.png"):
        recorded.main()
