"""EC2 on-demand prices for any region: fetched from the AWS Price List Query API, cached with their date.

`flank cost prices --region R` asks `pricing.get_products` for the region's on-demand Linux prices
(shared tenancy, no pre-installed software, current generation), keeps the m, r, c and x families
(Intel, AMD and Graviton, with an `arch` column: an R stack built for x86_64 may not build on arm64),
and writes them to FLANK_HOME's price cache as a table with the shipped table's columns, headed by
the date it was fetched. The plan reads the cache before the shipped table (`price_table`) and
says how old it is.

The Price List Query API answers in a few regions only (us-east-1 among them) whatever region's
prices it is asked for; moto does not implement it.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any

from flank_ops.cost.settings import (
    TABLE_COLUMNS,
    CostSettings,
    InstanceType,
    PriceTable,
    fetch_hint,
    own_or_shipped_table,
)
from flank_ops.errors import UserError

PRICING_REGION = "us-east-1"
SERVICE = "AmazonEC2"
REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
# the major kinds: general purpose (m), memory (r), compute (c), memory-intensive (x); e.g. m7i, r6g, c7gn, x2iedn
FAMILY_RE = re.compile(r"^[mrcx]\d+[a-z]*(-flex)?$")
FETCHED_PREFIX = "# fetched "


def product_filters(region: str) -> list[dict[str, str]]:
    """One price per instance type: on-demand Linux, shared tenancy, no SQL, no licence, in use."""
    wanted = {
        "regionCode": region,
        "operatingSystem": "Linux",
        "tenancy": "Shared",
        "preInstalledSw": "NA",
        "capacitystatus": "Used",
        "licenseModel": "No License required",
        "currentGeneration": "Yes",
    }
    return [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in wanted.items()]


def _hourly_usd(terms: dict[str, Any]) -> float | None:
    for offer in (terms.get("OnDemand") or {}).values():
        for dimension in (offer.get("priceDimensions") or {}).values():
            usd = (dimension.get("pricePerUnit") or {}).get("USD")
            if dimension.get("unit") == "Hrs" and usd is not None:
                return float(usd)
    return None


def parse_product(text: str) -> InstanceType | None:
    """One PriceList entry (a JSON string, as AWS documents it) as a priced type; None when not wanted."""
    product = json.loads(text)
    attrs = (product.get("product") or {}).get("attributes") or {}
    name = attrs.get("instanceType", "")
    family, _, size = name.partition(".")
    if not FAMILY_RE.match(family) or size.startswith("metal"):
        return None
    usd = _hourly_usd(product.get("terms") or {})
    try:
        vcpus = int(attrs["vcpu"])
        memory = float(attrs["memory"].replace(",", "").split()[0])  # "1,024 GiB"
    except (KeyError, ValueError, IndexError):
        return None
    if not usd:
        return None
    arch = "arm64" if "graviton" in attrs.get("physicalProcessor", "").lower() else "x86_64"
    return InstanceType(name, family, vcpus, memory, usd, arch)


def pricing_client(cost: CostSettings) -> Any:
    import boto3
    from botocore.config import Config as BotoConfig

    config = BotoConfig(connect_timeout=5, read_timeout=30, retries={"max_attempts": 3})
    return boto3.session.Session(region_name=PRICING_REGION).client("pricing", config=config)


def fetch_prices(client: Any, region: str) -> list[InstanceType]:
    """Every wanted type's price in `region`, cheapest first."""
    from flank_ops.cost.aws import call

    found: dict[str, InstanceType] = {}
    kwargs: dict[str, Any] = {
        "ServiceCode": SERVICE,
        "Filters": product_filters(region),
        "FormatVersion": "aws_v1",
        "MaxResults": 100,
    }
    while True:
        page = call(f"fetching the EC2 prices of {region}", client.get_products, **kwargs)
        for text in page.get("PriceList", []):
            kind = parse_product(text)
            if kind is not None:
                found[kind.name] = kind
        token = page.get("NextToken")
        if not token:
            break
        kwargs["NextToken"] = token
    return sorted(found.values(), key=lambda t: (t.family, t.vcpus))


def cache_file(cache: Path, region: str) -> Path:
    return cache / f"{region}.csv"


def write_cache(cache: Path, region: str, kinds: list[InstanceType], fetched: date) -> Path:
    from flank_ops.fileio import atomic_write_text

    lines = [
        f"{FETCHED_PREFIX}{fetched.isoformat()} by `flank cost prices` from the AWS Price List Query API: "
        "on-demand Linux, USD per hour",
        TABLE_COLUMNS,
        *(f"{region},{k.name},{k.family},{k.vcpus},{k.memory_gib:g},{k.usd_per_hour:g},{k.arch}" for k in kinds),
    ]
    cache.mkdir(parents=True, exist_ok=True)
    path = cache_file(cache, region)
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def read_cached(cache: Path, region: str) -> PriceTable | None:
    """The region's fetched prices, with their date; None when never fetched."""
    path = cache_file(cache, region)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    first = text.split("\n", 1)[0]
    fetched = None
    if first.startswith(FETCHED_PREFIX):
        try:
            fetched = date.fromisoformat(first[len(FETCHED_PREFIX) :].split()[0])
        except (ValueError, IndexError):
            fetched = None
    return PriceTable(text, str(path), fetched)


def check_region(region: str) -> str:
    if not REGION_RE.match(region):
        raise UserError(f"{region!r} is not an AWS region name", "e.g. --region eu-west-2")
    return region


def price_table(cost: CostSettings, cache: Path) -> PriceTable:
    """Where the plan's prices come from, first found: [cost] types_file, the region's fetched prices
    in `cache` (Home.price_cache_dir), the shipped table."""
    if not cost.types_file:
        cached = read_cached(cache, cost.region)
        if cached is not None:
            return cached
    return own_or_shipped_table(cost)


def describe_source(table: PriceTable, region: str, today: date) -> str:
    """'prices: eu-west-2, fetched 2026-12-03 (3 days ago)' — what a reader of the plan needs to trust it."""
    if table.fetched is not None:
        days = (today - table.fetched).days
        age = "today" if days <= 0 else f"{days} day{'s' if days != 1 else ''} ago"
        stale = f"; refresh: {fetch_hint(region)}" if days > 30 else ""
        return f"prices: {region}, fetched {table.fetched.isoformat()} ({age}){stale}"
    return f"prices: {table.where} (current prices: {fetch_hint(region)})"


# EBS gp3 storage, USD per GiB-month: the us-east-1 list price (most regions are within 20% of it).
EBS_GP3_USD_PER_GIB_MONTH = 0.08


def hourly_price(table: PriceTable, region: str, name: str) -> float | None:
    """One type's price per hour in `region` from a price table, whatever its family or arch."""
    from flank_ops.cost.settings import read_table

    for row in read_table(table.text, table.where):
        if row.get("region") == region and row.get("type") == name:
            try:
                return float(row["usd_per_hour"])
            except (KeyError, TypeError, ValueError):
                return None
    return None
