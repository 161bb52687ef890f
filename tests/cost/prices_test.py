"""`flank cost prices`: any region's EC2 prices from the AWS Price List Query API, cached, used by the plan.

The Price List Query API is not in moto, and nothing else real can answer offline: the one mock here is
botocore's Stubber on the pricing client, answering with products shaped as AWS documents GetProducts
(PriceList entries are JSON strings: product attributes and OnDemand terms). The prices in them are made
up for the test. Everything after the call — the cache in FLANK_HOME, `flank cost plan` — is the real CLI.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pytest

from flank_ops.paths import Home
from helpers.cli import run_flank
from helpers.cost_fixtures import SEED_YML, write_runs, write_toml
from helpers.deployed import deploy

NOW = "2026-11-26T12:00:00+00:00"
REGION = "eu-west-2"

# (type, vCPUs, memory, physical processor, USD per hour) — as the Price List names them
PRODUCTS = [
    ("r6i.large", "2", "16 GiB", "Intel Xeon 8375C (Ice Lake)", "0.1480000000"),
    ("r6i.8xlarge", "32", "256 GiB", "Intel Xeon 8375C (Ice Lake)", "2.3680000000"),
    ("r6i.16xlarge", "64", "512 GiB", "Intel Xeon 8375C (Ice Lake)", "4.7360000000"),
    ("m7a.large", "2", "8 GiB", "AMD EPYC 9R14 Processor", "0.1350000000"),
    ("r7g.8xlarge", "32", "256 GiB", "AWS Graviton3 Processor", "1.9200000000"),
    ("x2iedn.16xlarge", "64", "2,048 GiB", "Intel Xeon Scalable (Icelake)", "15.6000000000"),
    ("t3.large", "2", "8 GiB", "Intel Skylake E5 2686 v5", "0.0944000000"),  # burstable: not a major kind
    ("r6i.metal", "128", "1,024 GiB", "Intel Xeon 8375C (Ice Lake)", "9.4720000000"),  # metal: not resized to
]


def price_list_entry(kind: str, vcpu: str, memory: str, processor: str, usd: str) -> str:
    sku = "SKU" + str(abs(hash(kind)) % 10**8)
    return json.dumps(
        {
            "product": {
                "productFamily": "Compute Instance",
                "attributes": {
                    "instanceType": kind,
                    "instanceFamily": "Memory optimized",
                    "vcpu": vcpu,
                    "memory": memory,
                    "physicalProcessor": processor,
                    "processorArchitecture": "64-bit",
                    "regionCode": REGION,
                    "location": "EU (London)",
                    "operatingSystem": "Linux",
                    "tenancy": "Shared",
                    "preInstalledSw": "NA",
                    "capacitystatus": "Used",
                    "licenseModel": "No License required",
                    "currentGeneration": "Yes",
                    "servicecode": "AmazonEC2",
                },
                "sku": sku,
            },
            "serviceCode": "AmazonEC2",
            "terms": {
                "OnDemand": {
                    f"{sku}.JRTCKXETXF": {
                        "priceDimensions": {
                            f"{sku}.JRTCKXETXF.6YS6EN2CT7": {
                                "unit": "Hrs",
                                "endRange": "Inf",
                                "description": f"${usd} per On Demand Linux {kind} Instance Hour",
                                "appliesTo": [],
                                "rateCode": f"{sku}.JRTCKXETXF.6YS6EN2CT7",
                                "beginRange": "0",
                                "pricePerUnit": {"USD": usd},
                            }
                        },
                        "sku": sku,
                        "effectiveDate": "2026-11-01T00:00:00Z",
                        "offerTermCode": "JRTCKXETXF",
                        "termAttributes": {},
                    }
                }
            },
            "version": "20261101000000",
            "publicationDate": "2026-11-01T00:00:00Z",
        }
    )


def _fetch_with_stubbed_api(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> str:
    """`flank cost prices --region eu-west-2` in-process, the Price List answering in two pages."""
    import boto3
    from botocore.stub import Stubber

    from flank_ops.cost import prices
    from flank_ops.main import main

    client = boto3.session.Session(
        region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    ).client("pricing")
    stub = Stubber(client)
    expected = {
        "ServiceCode": "AmazonEC2",
        "Filters": prices.product_filters(REGION),
        "FormatVersion": "aws_v1",
        "MaxResults": 100,
    }
    entries = [price_list_entry(*p) for p in PRODUCTS]
    stub.add_response(
        "get_products", {"FormatVersion": "aws_v1", "PriceList": entries[:4], "NextToken": "page-2"}, expected
    )
    stub.add_response(
        "get_products", {"FormatVersion": "aws_v1", "PriceList": entries[4:]}, {**expected, "NextToken": "page-2"}
    )
    monkeypatch.setattr(prices, "pricing_client", lambda _cost: client)
    with stub:
        assert main(["cost", "prices", "--region", REGION]) == 0
        stub.assert_no_pending_responses()
    return capsys.readouterr().out


@pytest.mark.slow
def test_fetched_prices_are_cached_with_their_date_and_used_by_the_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_toml()
    deploy(tmp_path, SEED_YML)
    write_runs()
    # before: the shipped table has no eu-west-2, and says what to do
    write_toml(f'[cost]\nregion = "{REGION}"\ncurrent_type = "r6i.8xlarge"\narch = "x86_64"\n')
    proc = run_flank("cost", "plan", "--now", NOW)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"no x86_64 instance types priced for region '{REGION}'" in proc.stderr
    assert (
        f"priced regions there: us-east-1; fetch your region's prices with `flank cost prices --region {REGION}`"
        in (proc.stderr)
    )

    out = _fetch_with_stubbed_api(monkeypatch, capsys)
    assert f"fetched 6 prices for {REGION}: 4 families (m7a, r6i, r7g, x2iedn), arm64 and x86_64" in out
    cache = Home().price_cache_dir / f"{REGION}.csv"
    assert f"cached in {cache}" in out
    lines = cache.read_text().splitlines()
    assert lines[0].startswith(f"# fetched {date.today().isoformat()} by `flank cost prices`")
    assert f"{REGION},r7g.8xlarge,r7g,32,256,1.92,arm64" in lines
    assert f"{REGION},x2iedn.16xlarge,x2iedn,64,2048,15.6,x86_64" in lines
    assert not any("t3." in line or "metal" in line for line in lines)

    plan = run_flank("cost", "plan", "--now", NOW, check=True).stdout
    assert "demo/nightly: r6i.8xlarge (32 vCPU, 256 GiB, $2.3680/h)" in plan  # the Graviton r7g is another arch
    assert "idle: m7a.large (2 vCPU, 8 GiB, $0.1350/h)" in plan
    assert f"prices: {REGION}, fetched {date.today().isoformat()} (today)" in plan
    # arm64 (a Graviton VM, or an R stack known to build there) gets the Graviton type
    write_toml(f'[cost]\nregion = "{REGION}"\narch = "arm64"\n')
    assert "demo/nightly: r7g.8xlarge" in run_flank("cost", "plan", "--now", NOW, check=True).stdout


@pytest.mark.slow
def test_the_shipped_table_is_the_offline_fallback_and_says_so(tmp_path: Path) -> None:
    write_toml()
    deploy(tmp_path, SEED_YML)
    write_runs()
    write_toml('[cost]\nregion = "us-east-1"\ncurrent_type = "r6i.8xlarge"\narch = "x86_64"\n')
    plan = run_flank("cost", "plan", "--now", NOW, check=True).stdout
    assert "prices: the shipped table (ec2_types.csv; approximate, not fetched) (current prices: flank cost prices --region us-east-1)" in plan
    assert re.search(r"today: r6i\.8xlarge \(32 vCPU, 256 GiB", plan)  # r6i is in it now (issue 25)


def test_shipped_table_has_every_major_kind_for_both_arches() -> None:
    from flank_ops.cost.settings import CostSettings, instance_types

    base = CostSettings("us-east-1", None, 0.25, None, None, None, 4, 2, 15, None, None)
    families = {arch: {t.family for t in instance_types(base._replace(arch=arch))} for arch in ("x86_64", "arm64")}
    for kind in "mrc":
        assert {f"{kind}6i", f"{kind}7i", f"{kind}6a", f"{kind}7a"} <= families["x86_64"]  # Intel, AMD
        assert {f"{kind}6g", f"{kind}7g", f"{kind}8g"} <= families["arm64"]  # Graviton 2, 3, 4
    assert {"x2idn", "x2iedn"} <= families["x86_64"] and "x2gd" in families["arm64"]


def test_bad_region_is_one_clear_line() -> None:
    proc = run_flank("cost", "prices", "--region", "London")
    assert proc.returncode == 1 and "'London' is not an AWS region name" in proc.stderr
    assert "Traceback" not in proc.stderr
    other = run_flank("cost", "plan", "--region", REGION)
    assert other.returncode == 1 and "--region works with prices" in other.stderr
