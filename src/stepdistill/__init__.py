"""stepdistill: Distilling step-by-step (Hsieh et al., 2023) as a practical tool."""

__version__ = "0.1.0"
