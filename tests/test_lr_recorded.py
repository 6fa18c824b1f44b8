"""benchmarks/lr_recorded.py: its recorded per-checkpoint accuracies give the last-checkpoint means that
BENCHMARKS.md quotes for both step sizes (issue 13)."""

from support.scripts import load_script

recorded = load_script("lr_recorded")


def test_every_curve_has_the_three_seeds_at_every_checkpoint():
    for curve in recorded.CURVES:
        assert sorted(curve.test) == [7, 8, 9], (curve.method, curve.lr)


def test_last_checkpoint_means_match_the_quoted_ones():
    last = {(curve.method, curve.lr): round(curve.mean[-1], 2) for curve in recorded.CURVES}
    assert last == {("standard", "lr 1e-4"): 30.17, ("dss", "lr 1e-4"): 30.67,
                    ("standard", "lr 3e-4"): 26.17, ("dss", "lr 3e-4"): 31.83}
