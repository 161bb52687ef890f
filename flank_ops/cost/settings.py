"""The [cost] table of flank.toml, typed, and the table of EC2 instance types it prices with.

Its keys, their meaning and defaults: settings_catalogue.py's [cost] section (the reader asks it).

Where prices come from, first found: `types_file`; the region's prices fetched by `flank cost prices`
(cost/prices.py, cached in FLANK_HOME); the shipped table (ec2_types.csv, the offline fallback, whose
header names the regions it holds).
"""

from __future__ import annotations

import csv
import os
from datetime import date
from pathlib import Path
from typing import Any, NamedTuple

from flank_ops.errors import UserError
from flank_ops.hints import flank_vm_command
from flank_ops.settings_catalogue import default, section

DEFAULT_REGION: str = default("cost", "region")
BURSTABLE = ("t2", "t3", "t3a", "t4g")
TYPES_FILE = "ec2_types.csv"
TABLE_COLUMNS = "region,type,family,vcpus,memory_gib,usd_per_hour,arch"
ARCHES = ("x86_64", "arm64")


class InstanceType(NamedTuple):
    name: str
    family: str
    vcpus: int
    memory_gib: float
    usd_per_hour: float
    arch: str = "x86_64"  # or arm64 (Graviton)

    @property
    def memory_kb(self) -> int:
        return int(self.memory_gib * 1024 * 1024)


class CostSettings(NamedTuple):
    region: str
    families: tuple[str, ...] | None  # None = every family in the table but burstable ones
    headroom: float
    current_type: str | None
    instance_id: str | None
    scheduler_role_arn: str | None
    idle_memory_gib: float
    idle_cpus: int
    grow_lead_minutes: int
    endpoint_url: str | None
    types_file: str | None
    arch: str = "x86_64"


def machine_arch() -> str:
    """This machine's architecture, as the price tables name it."""
    return "arm64" if os.uname().machine.lower() in ("aarch64", "arm64") else "x86_64"


def _get(table: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
    value = table.get(key, default)
    if value is None or (isinstance(value, kind) and not isinstance(value, bool)):
        return value
    want = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
    raise UserError(f"flank.toml: [cost] {key} must be a {want}, not {value!r}", "fix it in flank.toml")


KNOWN_KEYS = tuple(k.name for k in section("cost").keys)  # the one list: settings_catalogue.py


def cost_settings(settings: dict[str, Any]) -> CostSettings:
    table = settings.get("cost") or {}
    if not isinstance(table, dict):
        raise UserError("flank.toml: [cost] must be a table", "see the README's 'What it costs'")
    unknown = sorted(set(table) - set(KNOWN_KEYS))
    if unknown:
        from flank_ops.config.suggest import did_you_mean

        hint = did_you_mean(unknown[0], list(KNOWN_KEYS)) or f"known keys: {', '.join(KNOWN_KEYS)}"
        raise UserError(f"flank.toml: [cost] unknown key {unknown[0]!r}", hint)
    families = _get(table, "families", list)
    headroom = float(_get(table, "headroom", (int, float), default("cost", "headroom")))
    if not 0 <= headroom <= 4:
        raise UserError(
            f"flank.toml: [cost] headroom must be between 0 and 4, not {headroom}",
            "e.g. headroom = 0.25 keeps a quarter above the measured peak",
        )
    arch = _get(table, "arch", str) or machine_arch()
    if arch not in ARCHES:
        raise UserError(f"flank.toml: [cost] arch must be one of {', '.join(ARCHES)}, not {arch!r}")
    lead = _get(table, "grow_lead_minutes", int, default("cost", "grow_lead_minutes"))
    if not 0 <= lead <= 120:
        raise UserError(f"flank.toml: [cost] grow_lead_minutes must be between 0 and 120, not {lead}")
    return CostSettings(
        region=_get(table, "region", str, DEFAULT_REGION),
        families=tuple(str(f) for f in families) if families else None,
        headroom=headroom,
        current_type=_get(table, "current_type", str),
        instance_id=_get(table, "instance_id", str),
        scheduler_role_arn=_get(table, "scheduler_role_arn", str),
        idle_memory_gib=float(_get(table, "idle_memory_gib", (int, float), default("cost", "idle_memory_gib"))),
        idle_cpus=_get(table, "idle_cpus", int, default("cost", "idle_cpus")),
        grow_lead_minutes=lead,
        endpoint_url=_get(table, "endpoint_url", str),
        types_file=_get(table, "types_file", str),
        arch=arch,
    )


def read_table(text: str, where: str) -> list[dict[str, str]]:
    rows = csv.DictReader(line for line in text.splitlines() if line and not line.startswith("#"))
    try:
        return list(rows)
    except csv.Error as exc:
        raise UserError(f"{where}: {exc}", f"keep the columns {TABLE_COLUMNS}") from None


class PriceTable(NamedTuple):
    text: str  # CSV, TABLE_COLUMNS (arch may be missing: x86_64)
    where: str  # for messages: the file, or "the shipped table"
    fetched: date | None  # when `flank cost prices` fetched it (None: a table kept by hand or shipped)


def own_or_shipped_table(cost: CostSettings) -> PriceTable:
    """[cost] types_file, else the shipped table (cost/prices.py `price_table` puts fetched prices between)."""
    if cost.types_file:
        try:
            return PriceTable(Path(cost.types_file).read_text(encoding="utf-8"), cost.types_file, None)
        except OSError as exc:
            raise UserError(f"flank.toml: [cost] types_file {cost.types_file}: {exc.strerror or exc}") from None
    text = Path(__file__).with_name(TYPES_FILE).read_text(encoding="utf-8")  # package data beside this module
    return PriceTable(text, f"the shipped table ({TYPES_FILE}; approximate, not fetched)", None)


def table_regions(table: PriceTable) -> list[str]:
    return sorted({r.get("region", "") for r in read_table(table.text, table.where)})


def instance_types(cost: CostSettings, table: PriceTable | None = None) -> list[InstanceType]:
    """The priced types of the region in `table` (default: own_or_shipped_table), in the allowed
    families and arch, cheapest first."""
    table = table or own_or_shipped_table(cost)
    out = []
    for row in read_table(table.text, table.where):
        try:
            kind = InstanceType(
                row["type"],
                row["family"],
                int(row["vcpus"]),
                float(row["memory_gib"]),
                float(row["usd_per_hour"]),
                row.get("arch") or "x86_64",
            )
        except (KeyError, TypeError, ValueError):
            raise UserError(f"{table.where}: bad row {row}", f"keep the columns {TABLE_COLUMNS}") from None
        if row.get("region") != cost.region or kind.arch != cost.arch:
            continue
        if cost.families is not None and kind.family not in cost.families:
            continue
        if cost.families is None and kind.family in BURSTABLE:
            continue
        out.append(kind)
    if not out:
        raise UserError(
            f"no {cost.arch} instance types priced for region {cost.region!r} and families "
            f"{', '.join(cost.families or ('(all)',))} in {table.where}",
            f"priced regions there: {', '.join(table_regions(table))}; fetch your region's prices with "
            f"`{fetch_hint(cost.region)}` (or set [cost] types_file, or [cost] arch)",
        )
    return sorted(out, key=lambda t: (t.usd_per_hour, t.memory_gib))


def fetch_hint(region: str) -> str:
    """The command that fetches `region`'s current prices, as typed where it is printed (VM or laptop)."""
    return flank_vm_command("cost prices", "--region", region)


def find_type(types: list[InstanceType], name: str, cost: CostSettings) -> InstanceType:
    for kind in types:
        if kind.name == name:
            return kind
    raise UserError(
        f"instance type {name!r} is not in the price table for {cost.region}"
        + (f" (families {', '.join(cost.families)})" if cost.families else ""),
        "add its family to [cost] families, or its price to your [cost] types_file",
    )
