"""Paired statistics for runs scored on the same test items: is one method really better than another?

Two runs that share task, split, student, fraction and seed answered the same test items, so they are
compared item by item (a paired design), which is far more sensitive than comparing two accuracies.

- Accuracy: Wilson score interval (95%).
- Difference A - B: the mean over seeds of the per-seed paired difference in accuracy, with a 95% percentile
  bootstrap interval (items resampled with replacement within each seed, >= 10,000 resamples).
- Exact McNemar test on the discordant items (A right and B wrong, or the reverse), pooled over seeds.
- Over seeds (two or more): a 95% Student t interval of the mean per-seed difference. The item bootstrap and
  McNemar hold the trained models fixed, so they measure the test set's sampling noise only; how far the
  difference moves from one training run to the next (data order, initialisation, which checkpoint validation
  picks) shows only across seeds. Two arms whose training data differ by 2 of 180 rationales came out +6.0
  points apart, [+2.5, +9.5] on test items, over 3 seeds (BENCHMARKS.md); the seed interval was [-7.1, +19.1].
- A verdict: "better" / "worse" only when the item interval excludes 0 and, with several seeds, the seed
  interval excludes it on the same side; "inconsistent over seeds" when only the item interval does;
  otherwise "no detectable difference" together with the smallest difference this test set could detect
  (see `minimum_detectable_effect`) and, with several seeds, the smallest these seeds could detect.
- Planning over seeds: the per-seed differences' spread gives the smallest difference a t test over S seed pairs
  detects with 80% power, and the seed pairs a target difference needs (`seeds_detectable`, `seeds_needed`).
  Training noise, not the test set, usually sets the bar: on 1,221 CQA test items the item test detects about
  1 point, nine seeds about 2.5 (BENCHMARKS.md).

Pure functions on lists of booleans (one per test item); reading run folders lives in runs.py.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from fractions import Fraction

import numpy as np

Z_95 = 1.959963984540054  # two-sided 95%: the 97.5th percentile of the standard normal
Z_POWER_80 = 0.8416212335729143  # one-sided 80% power: the 80th percentile of the standard normal
RESAMPLES = 10_000
# Two-sided 95% quantiles of Student's t for 1..30 degrees of freedom (t_0.975); beyond, see t_quantile_975.
T_975 = (12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281, 2.2010, 2.1788,
         2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860, 2.0796, 2.0739, 2.0687, 2.0639,
         2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423)


@dataclass
class SeedPair:
    """Both runs' correctness on the same test items of one seed, aligned item by item."""
    seed: int | None
    correct_a: list[bool]
    correct_b: list[bool]

    @property
    def items(self) -> int:
        return len(self.correct_a)

    @property
    def only_a(self) -> int:
        return sum(1 for a, b in zip(self.correct_a, self.correct_b) if a and not b)

    @property
    def only_b(self) -> int:
        return sum(1 for a, b in zip(self.correct_a, self.correct_b) if b and not a)


@dataclass
class AccuracyInterval:
    mean: float  # percent, mean over seeds
    low: float  # 95% Wilson score interval, percent
    high: float
    std: float | None  # standard deviation over seeds; None for a single seed (no "± 0.00")
    seeds: int
    items: int  # test items per seed


@dataclass
class PairedComparison:
    a: str
    b: str
    seeds: int
    items: int  # test items per seed
    difference: float  # A - B in accuracy points, mean over seeds
    low: float  # 95% paired-bootstrap interval of the difference (test items resampled, the runs held fixed)
    high: float
    only_a: int  # discordant items pooled over seeds: A right, B wrong
    only_b: int  # ... and B right, A wrong
    p_value: float  # exact two-sided McNemar on only_a vs only_b
    verdict: str  # "better", "worse" (A relative to B), "inconsistent over seeds" or "no detectable difference"
    detectable: float  # smallest difference (points) detectable at 80% power, see minimum_detectable_effect
    seed_low: float | None = None  # 95% t interval over seeds of the per-seed difference; None for one seed
    seed_high: float | None = None
    seed_spread: float | None = None  # standard deviation (points) of the per-seed differences; None for one seed
    seed_detectable: float | None = None  # smallest difference these seeds detect at 80% power, see seeds_detectable

    def as_dict(self) -> dict:
        return asdict(self)


def wilson_interval(accuracy: float, items: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for a proportion `accuracy` (0..1) observed on `items` items, in percent.

    centre = (p + z²/2n) / (1 + z²/n),  half-width = z·sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n).
    Unlike the normal interval it stays inside [0, 100] and is not empty at 0% or 100%.
    """
    if items <= 0:
        return (float("nan"), float("nan"))
    denominator = 1 + z * z / items
    centre = (accuracy + z * z / (2 * items)) / denominator
    half = z * math.sqrt(accuracy * (1 - accuracy) / items + z * z / (4 * items * items)) / denominator
    # at 0% (100%) the lower (upper) bound is exactly the observed value; computed, it is off by rounding
    low = 0.0 if accuracy <= 0 else max(0.0, centre - half)
    high = 1.0 if accuracy >= 1 else min(1.0, centre + half)
    return (100 * low, 100 * high)


def accuracy_interval(per_seed_correct: list[list[bool]]) -> AccuracyInterval:
    """Mean accuracy over seeds with a Wilson interval on n = the test items of one seed.

    Seeds re-score the same test items, so they add no evidence about test-set sampling: the interval
    uses the items of one seed (conservative), and the seed-to-seed spread is reported apart as `std`.
    """
    accuracies = [sum(correct) / len(correct) for correct in per_seed_correct]
    mean = sum(accuracies) / len(accuracies)
    items = min(len(correct) for correct in per_seed_correct)
    low, high = wilson_interval(mean, items)
    std = float(np.std(accuracies, ddof=1)) * 100 if len(accuracies) > 1 else None
    return AccuracyInterval(100 * mean, low, high, std, len(accuracies), items)


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Exact two-sided McNemar p-value: under "no difference" each discordant item is a fair coin, so
    p = min(1, 2 · P(Binomial(n, 1/2) <= min(only_a, only_b))), n = only_a + only_b, computed exactly with
    integer binomial coefficients (no normal approximation, no continuity correction)."""
    discordant = only_a + only_b
    if discordant == 0:
        return 1.0
    tail = sum(math.comb(discordant, k) for k in range(min(only_a, only_b) + 1))
    return float(min(Fraction(1), Fraction(2 * tail, 2 ** discordant)))


def _difference_counts(pair: SeedPair) -> tuple[int, int, int]:
    return pair.only_a, pair.only_b, pair.items - pair.only_a - pair.only_b


def paired_bootstrap(pairs: list[SeedPair], resamples: int = RESAMPLES, seed: int = 0) -> tuple[float, float, float]:
    """(mean difference, 2.5th, 97.5th percentile) in points, resampling test items within each seed.

    Each item's difference a - b is +1, -1 or 0, so a resample of n items with replacement is fully
    described by how many of each it drew: a multinomial draw with the observed proportions. Drawing those
    counts is exactly the item bootstrap, at O(resamples) cost instead of O(resamples · n).
    """
    rng = np.random.default_rng(seed)
    resampled = np.zeros(resamples)
    for pair in pairs:
        counts = _difference_counts(pair)
        draws = rng.multinomial(pair.items, np.array(counts) / pair.items, size=resamples)  # (R, 3)
        resampled += (draws[:, 0] - draws[:, 1]) / pair.items
    resampled *= 100 / len(pairs)
    observed = 100 * sum((pair.only_a - pair.only_b) / pair.items for pair in pairs) / len(pairs)
    low, high = np.percentile(resampled, [2.5, 97.5])
    return observed, float(low), float(high)


def normal_paired_interval(pairs: list[SeedPair], z: float = Z_95) -> tuple[float, float, float]:
    """The analytical counterpart of `paired_bootstrap`: mean ± z·SE, where a seed's difference has
    variance (d+ + d- - (d+ - d-)²)/n (d± the discordant proportions) and the mean over S independent
    seeds has variance Σ var_s / S²."""
    variance = 0.0
    for pair in pairs:
        plus, minus = pair.only_a / pair.items, pair.only_b / pair.items
        variance += (plus + minus - (plus - minus) ** 2) / pair.items
    mean = sum((pair.only_a - pair.only_b) / pair.items for pair in pairs) / len(pairs)
    half = z * math.sqrt(variance) / len(pairs)
    return 100 * mean, 100 * (mean - half), 100 * (mean + half)


def minimum_detectable_effect(pairs: list[SeedPair]) -> float:
    """Smallest true difference (points) a two-sided 5% paired test detects with 80% power here.

    Normal approximation of McNemar's test (Connor 1987, null variance): one seed's difference has variance
    p_disc / n, with p_disc the observed share of discordant items; over S seeds the mean difference has
    variance Σ_s p_disc,s / n_s / S². Then MDE = (z_0.975 + z_0.80) · sqrt(Σ_s p_disc,s / n_s) / S.
    A seed with no discordant item counts as one, so identical predictions do not claim a perfect test.
    """
    variance = sum(max(pair.only_a + pair.only_b, 1) / pair.items ** 2 for pair in pairs)
    return 100 * (Z_95 + Z_POWER_80) * math.sqrt(variance) / len(pairs)


def cornish_fisher_t(z: float, degrees: int) -> float:
    """Student's t quantile from the normal quantile z, by the Cornish-Fisher expansion in 1/degrees."""
    return z + (z ** 3 + z) / (4 * degrees) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * degrees ** 2)


def t_quantile_975(degrees: int) -> float:
    """Student's t at 0.975 (two-sided 95%): the table to 30 degrees of freedom, then the Cornish-Fisher
    expansion around the normal quantile (it gives the table's 2.0423 at 30)."""
    if degrees < 1:
        raise ValueError("a t interval needs at least 1 degree of freedom (2 seeds)")
    if degrees <= len(T_975):
        return T_975[degrees - 1]
    return cornish_fisher_t(Z_95, degrees)


def t_quantile_80(degrees: int) -> float:
    """Student's t at 0.80 (the 80%-power quantile), by the expansion alone: near the centre it is close at
    any degrees of freedom (1.349 against the table's 1.376 at 1, 1.058 against 1.061 at 2, 0.879 at 10)."""
    if degrees < 1:
        raise ValueError("a t quantile needs at least 1 degree of freedom (2 seeds)")
    return cornish_fisher_t(Z_POWER_80, degrees)


def t_interval(values: list[float]) -> tuple[float, float] | None:
    """95% t interval of the mean of independent draws; None for a single draw, whose spread cannot be measured."""
    if len(values) < 2:
        return None
    mean = statistics.fmean(values)
    half = t_quantile_975(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return mean - half, mean + half


def seed_interval(pairs: list[SeedPair]) -> tuple[float, float] | None:
    """95% t interval (points) of the mean per-seed difference, each seed's pair of runs one draw of training;
    None for a single seed, whose training noise cannot be measured."""
    return t_interval(per_seed_differences(pairs))


def per_seed_differences(pairs: list[SeedPair]) -> list[float]:
    """A - B in accuracy points, one value per seed: the draws the seed interval and the spread are made of."""
    return [100 * (pair.only_a - pair.only_b) / pair.items for pair in pairs]


def spread_over_seeds(pairs: list[SeedPair]) -> float | None:
    """Standard deviation (points) of the per-seed differences: how far one training run's gap moves from the
    next; None for a single seed."""
    if len(pairs) < 2:
        return None
    return statistics.stdev(per_seed_differences(pairs))


def seeds_detectable(spread: float, seeds: int) -> float:
    """Smallest true mean difference (points) that a two-sided 5% t test over `seeds` seed pairs detects with
    80% power, when per-seed differences spread by `spread` points:
    (t_0.975 + t_0.80, both at seeds - 1 degrees of freedom) · spread / sqrt(seeds).
    The usual approximation of the noncentral t; it needs at least 2 seeds."""
    degrees = seeds - 1
    return (t_quantile_975(degrees) + t_quantile_80(degrees)) * spread / math.sqrt(seeds)


def seeds_needed(spread: float, difference: float) -> int:
    """Seed pairs a comparison needs to detect a true difference of `difference` points over seeds (two-sided
    5%, 80% power), given the spread of per-seed differences seen so far: the smallest S >= 2 with
    seeds_detectable(spread, S) <= |difference|. E.g. spread 4.0 and 1.9 points: 37 (README, SVAMP 12.5%)."""
    if difference == 0:
        raise ValueError("no number of seeds detects a difference of 0 points")
    target = abs(difference)
    # t quantiles exceed the normal ones, so the normal answer is a floor; seeds_detectable falls as S grows, so
    # double to a ceiling, then bisect (stepping by one could stall where 1/sqrt(S) no longer moves in floats)
    low = max(2, math.ceil(((Z_95 + Z_POWER_80) * spread / target) ** 2))
    high = low
    while seeds_detectable(spread, high) > target:
        low, high = high + 1, high * 2
    while low < high:
        middle = (low + high) // 2
        if seeds_detectable(spread, middle) <= target:
            high = middle
        else:
            low = middle + 1
    return high


def verdict(low: float, high: float, over_seeds: tuple[float, float] | None = None) -> str:
    """"better"/"worse" when the item interval excludes 0 and the seed interval (if any) agrees."""
    if low > 0:
        side, holds = "better", over_seeds is None or over_seeds[0] > 0
    elif high < 0:
        side, holds = "worse", over_seeds is None or over_seeds[1] < 0
    else:
        return "no detectable difference"
    return side if holds else "inconsistent over seeds"


def compare(name_a: str, name_b: str, pairs: list[SeedPair], resamples: int = RESAMPLES) -> PairedComparison:
    """A against B over the seeds both ran; `pairs` must be aligned item by item (see runs.py)."""
    if not pairs:
        raise ValueError("compare needs at least one seed pair")
    difference, low, high = paired_bootstrap(pairs, resamples)
    over_seeds = seed_interval(pairs)
    spread = spread_over_seeds(pairs)
    only_a = sum(pair.only_a for pair in pairs)
    only_b = sum(pair.only_b for pair in pairs)
    return PairedComparison(a=name_a, b=name_b, seeds=len(pairs), items=min(pair.items for pair in pairs),
                            difference=difference, low=low, high=high, only_a=only_a, only_b=only_b,
                            p_value=mcnemar_exact(only_a, only_b), verdict=verdict(low, high, over_seeds),
                            detectable=minimum_detectable_effect(pairs),
                            seed_low=over_seeds[0] if over_seeds else None,
                            seed_high=over_seeds[1] if over_seeds else None, seed_spread=spread,
                            seed_detectable=None if spread is None else seeds_detectable(spread, len(pairs)))


def describe_verdict(outcome: str, detectable: float, seed_detectable: float | None = None) -> str:
    """One phrase a reader can act on: the verdict, and what the test set (and the seeds) could have seen."""
    if outcome == "no detectable difference":
        if seed_detectable is None:
            return f"no detectable difference (could detect ≥ {detectable:.1f} points)"
        return (f"no detectable difference (could detect ≥ {detectable:.1f} points on these items, "
                f"≥ {seed_detectable:.1f} over these seeds)")
    if outcome == "inconsistent over seeds":
        return "inconsistent over seeds (the item interval excludes 0, the seed interval does not)"
    return outcome


def format_seed_interval(low: float | None, high: float | None) -> str:
    """'[low, high]' over seeds, or '-' for a single seed."""
    return "-" if low is None else f"[{low:+.2f}, {high:+.2f}]"
