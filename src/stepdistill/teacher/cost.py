"""What a run costs: prices per million tokens, a cost cap, and the estimate of what is left to ask.

Prices come from `--price-in` / `--price-out` (USD per million prompt / completion tokens) or a small
YAML file (`--price-file`), either flat or per model:

    input: 0.15            # or, per model:   gpt-4o-mini: {input: 0.075, output: 0.30}
    output: 0.60           #                  gpt-4o:      {input: 1.25,  output: 5.00}

(The Batch API bills half the live price: give the batch prices when you export or --batch-submit.)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from ..errors import DataError


@dataclass(frozen=True)
class Prices:
    input: float | None = None  # USD per million prompt tokens
    output: float | None = None  # USD per million completion tokens

    @property
    def known(self) -> bool:
        return self.input is not None and self.output is not None

    def cost(self, prompt_tokens: float, completion_tokens: float) -> float | None:
        if not self.known:
            return None
        return (prompt_tokens * self.input + completion_tokens * self.output) / 1e6


def load_prices(price_in: float | None, price_out: float | None, price_file: str | None, model: str) -> Prices:
    """Flags win over the file; a file may give one price for all models or one per model."""
    from_file = _from_file(Path(price_file), model) if price_file else Prices()
    prices = Prices(price_in if price_in is not None else from_file.input,
                    price_out if price_out is not None else from_file.output)
    for name, value in (("input", prices.input), ("output", prices.output)):
        if value is not None and value < 0:
            raise DataError(f"the {name} price must not be negative, got {value}")
    return prices


def _from_file(path: Path, model: str) -> Prices:
    if not path.is_file():
        raise DataError(f"{path}: price file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise DataError(f"{path}: malformed YAML ({error})") from None
    if isinstance(data, dict) and isinstance(data.get(model), dict):
        data = data[model]
    if not isinstance(data, dict) or not {"input", "output"} <= set(data):
        raise DataError(f"{path}: expected 'input' and 'output' prices (USD per million tokens), "
                        f"at the top or under the model name '{model}'")
    if not all(isinstance(data[name], (int, float)) for name in ("input", "output")):
        raise DataError(f"{path}: 'input' and 'output' should be numbers (USD per million tokens)")
    return Prices(float(data["input"]), float(data["output"]))


def cost_summary(prices: Prices, run_tokens: dict, all_runs: dict | None) -> dict | None:
    """The manifest's cost block: this run, and every answer the cache holds (all runs together)."""
    if not prices.known:
        return None
    return {"price_in_per_million": prices.input, "price_out_per_million": prices.output,
            "run_usd": round(prices.cost(run_tokens["prompt"], run_tokens["completion"]), 6),
            "all_runs_usd": round(prices.cost(all_runs["prompt"], all_runs["completion"]), 6) if all_runs else None}
