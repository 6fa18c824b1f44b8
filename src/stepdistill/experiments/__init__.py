"""Sweeps over methods x fractions x students x seeds, and the reports that compare them."""
