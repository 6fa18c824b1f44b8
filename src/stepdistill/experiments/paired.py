"""Paired statistics for runs scored on the same test items: is one method really better than another?

Two runs that share task, split, student, fraction and seed answered the same test items, so they are
compared item by item (a paired design), which is far more sensitive than comparing two accuracies.

- Accuracy: Wilson score interval (95%).
- Difference A - B: the mean over seeds of the per-seed paired difference in accuracy, with a 95% percentile
  bootstrap interval (items resampled with replacement within each seed, >= 10,000 resamples).
- Exact McNemar test on the discordant items (A right and B wrong, or the reverse), pooled over seeds.
- A verdict: "better" / "worse" only when the interval excludes 0; otherwise "no detectable difference"
  together with the smallest difference this test set could detect (see `minimum_detectable_effect`).

Pure functions on lists of booleans (one per test item); reading run folders lives in runs.py.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from fractions import Fraction

import numpy as np

Z_95 = 1.959963984540054  # two-sided 95%: the 97.5th percentile of the standard normal
Z_POWER_80 = 0.8416212335729143  # one-sided 80% power: the 80th percentile of the standard normal
RESAMPLES = 10_000


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
    low: float  # 95% paired-bootstrap interval of the difference
    high: float
    only_a: int  # discordant items pooled over seeds: A right, B wrong
    only_b: int  # ... and B right, A wrong
    p_value: float  # exact two-sided McNemar on only_a vs only_b
    verdict: str  # "better", "worse" (A relative to B) or "no detectable difference"
    detectable: float  # smallest difference (points) detectable at 80% power, see minimum_detectable_effect

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


def verdict(low: float, high: float) -> str:
    if low > 0:
        return "better"
    if high < 0:
        return "worse"
    return "no detectable difference"


def compare(name_a: str, name_b: str, pairs: list[SeedPair], resamples: int = RESAMPLES) -> PairedComparison:
    """A against B over the seeds both ran; `pairs` must be aligned item by item (see runs.py)."""
    if not pairs:
        raise ValueError("compare needs at least one seed pair")
    difference, low, high = paired_bootstrap(pairs, resamples)
    only_a = sum(pair.only_a for pair in pairs)
    only_b = sum(pair.only_b for pair in pairs)
    return PairedComparison(a=name_a, b=name_b, seeds=len(pairs), items=min(pair.items for pair in pairs),
                            difference=difference, low=low, high=high, only_a=only_a, only_b=only_b,
                            p_value=mcnemar_exact(only_a, only_b), verdict=verdict(low, high),
                            detectable=minimum_detectable_effect(pairs))


def describe_verdict(outcome: str, detectable: float) -> str:
    """One phrase a reader can act on: the verdict, and what the test set could have seen."""
    if outcome == "no detectable difference":
        return f"no detectable difference (could detect ≥ {detectable:.1f} points)"
    return outcome
