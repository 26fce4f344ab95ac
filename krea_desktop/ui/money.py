"""How amounts of money are written: one precision everywhere, and an honest mark on
costs that a simulator made up."""

from __future__ import annotations

# The service reports costs in USD to a fraction of a cent; four decimals show every
# amount it reports exactly, so per-image amounts add up to a job's and a session's total.
COST_DECIMALS = 4


def format_cost(amount: float, simulated: bool = False) -> str:
    """``$0.0045``; ``$0.0045 (simulated)`` for a cost reported by the simulator."""
    text = f"${amount:.{COST_DECIMALS}f}"
    return f"{text} (simulated)" if simulated else text


def cost_simulated(recorded: bool | None, demo: bool) -> bool:
    """Whether an image's cost was made up: what its record says, else (a record that does
    not say) whether the window runs in demo mode."""
    return demo if recorded is None else recorded
