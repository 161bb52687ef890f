"""What the project's VM costs per month as it is now: printed by `flank up` and `flank down`.

A running instance: its type 24/7 plus its disks; a stopped one: its disks only; terminated: the
kept data volume. Prices come from the same tables as `flank cost plan` (cost/prices.py): the
region's fetched prices, else the shipped table; disks at the gp3 list price.
"""

from __future__ import annotations

from flank_ops.cost.prices import EBS_GP3_USD_PER_GIB_MONTH, hourly_price, price_table
from flank_ops.cost.settings import cost_settings, fetch_hint
from flank_ops.paths import Home

HOURS_PER_MONTH = 730.0


def monthly_cost(region: str, running_type: str | None, disks_gib: int, home: Home | None = None) -> str:
    """'now about $91/month: m7i.large 24/7 $74, disks 58 GiB $4.64' (a type without a price is named)."""
    home = home or Home()
    parts = []
    total = disks_gib * EBS_GP3_USD_PER_GIB_MONTH
    if running_type:
        table = price_table(cost_settings({"cost": {"region": region}}), home.price_cache_dir)
        hourly = hourly_price(table, region, running_type)
        if hourly is None:
            parts.append(f"{running_type} 24/7 (not priced for {region}: {fetch_hint(region)})")
        else:
            total += hourly * HOURS_PER_MONTH
            parts.append(f"{running_type} 24/7 ${hourly * HOURS_PER_MONTH:,.2f}")
    if disks_gib:
        parts.append(f"disks {disks_gib} GiB ${disks_gib * EBS_GP3_USD_PER_GIB_MONTH:,.2f}")
    if not parts:
        return "now costs nothing per month"
    return f"now about ${total:,.2f}/month: " + ", ".join(parts)
