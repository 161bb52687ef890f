"""Which instance type `flank up` launches when not told: what `flank cost plan` sizes for this FLANK_HOME.

The biggest size any pipeline's window needs (so every run fits), else the idle size; the plan's own
errors say why there is none (no projects, no finished runs, no prices for the region). x86_64 unless
[cost] arch says otherwise: the laptop's own arch (an arm64 Mac) says nothing about the VM's.
"""

from __future__ import annotations

import re

from flank_ops.errors import UserError
from flank_ops.paths import Home

GRAVITON_FAMILY = re.compile(r"^[a-z]+\d+[a-z]*g[a-z]*(-flex)?$")  # m7g, c7gn, x2gd, r8g, m6gd


def type_arch(instance_type: str) -> str:
    """x86_64 or arm64, from the type's family name (AWS names Graviton families with a g)."""
    return "arm64" if GRAVITON_FAMILY.match(instance_type.split(".")[0]) else "x86_64"


def planned_type(home: Home | None = None) -> tuple[str | None, str]:
    """(the planned type, "") or (None, why not)."""
    from flank_ops.cost.plan import plan_sizes
    from flank_ops.cost.prices import price_table
    from flank_ops.cost.resources import collect_needs
    from flank_ops.cost.settings import cost_settings, instance_types
    from flank_ops.settings import settings_for

    home = home or Home()
    if not home.root.is_dir() or not home.projects():
        return None, f"no projects in {home.root} to size from"
    try:
        settings = settings_for(home)
        cost = cost_settings(settings)
        if "arch" not in (settings.get("cost") or {}):
            cost = cost._replace(arch="x86_64")  # the VM's, not this laptop's: an R stack builds there for sure
        plan = plan_sizes(collect_needs(home), instance_types(cost, price_table(cost, home.price_cache_dir)), cost)
    except UserError as exc:
        return None, exc.message
    sizes = sorted(plan.sizes.values(), key=lambda t: t.usd_per_hour)
    return (sizes[-1] if sizes else plan.idle).name, ""
