"""Power: per-component power at a load, idle power, facility power, energy per token."""

from superpod.power.load import (
    Load,
    PowerModel,
    PowerReport,
    energy_per_token_j,
    idle_power_w,
    power_breakdown_w,
    power_report,
)

__all__ = ["Load", "PowerModel", "PowerReport", "energy_per_token_j", "idle_power_w",
           "power_breakdown_w", "power_report"]
