"""report.py — turn the model and region tables into output/report.md (standard library only)."""

import csv
import datetime
import os


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


coefs = read("output/model_coefficients.csv")
regions = read("output/regions.csv")
lines = [
    f"# Sales report — {datetime.date.today():%d %b %Y}",
    "",
    f"Run {os.environ.get('FLANK_RUN_ID', 'by hand')} of commit {os.environ.get('FLANK_COMMIT', 'unknown')[:7]}.",
    "",
    "| region | units | revenue |",
    "|---|---:|---:|",
]
lines += [f"| {r['region']} | {float(r['units']):,.0f} | {float(r['revenue']):,.2f} |" for r in regions]
lines += ["", "| term | estimate |", "|---|---:|"]
lines += [f"| {c['term']} | {float(c['estimate']):.4f} |" for c in coefs]
with open("output/report.md", "w") as f:
    f.write("\n".join(lines) + "\n")
print(f"wrote output/report.md ({len(regions)} regions, {len(coefs)} coefficients)")
