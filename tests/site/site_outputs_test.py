"""A run page's Outputs (issues 19 and 28): after status, failures, tasks and timing; collapsed per task
past a few files; images past the page's inline limit linked to the run's outputs page, which shows them
all; a failed task's old files marked as not made by this run."""

from __future__ import annotations

import base64
import json
import os
import re
from datetime import timedelta
from pathlib import Path

import pytest

from flank_ops.paths import Home, ProjectPaths
from flank_ops.site import build
from flank_ops.site.outputs import MAX_INLINE_IMAGES
from flank_ops.store import records
from flank_ops.store.model import ArtifactEntry
from helpers.site_records import T0, make_project, make_run

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEElEQVR4nGP4z8AARAwQCgAf7gP9i18U1AAAAABJRU5ErkJggg=="
)


def keep(paths: ProjectPaths, run_id: int, task: str, names: list[str], *, written_ns: int | None = None) -> None:
    """Files as run/artifacts.py keeps them: the copies, the record's entries, the sources index."""
    run_dir = paths.run_dir("nightly", run_id)
    record = records.read_record(run_dir)
    entries: list[ArtifactEntry] = []
    sources = {}
    for name in names:
        dest = records.artifacts_dir(run_dir, task) / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(PNG)
        entries.append({"path": name, "size": len(PNG), "kept": True, "note": None})
        mtime = written_ns if written_ns is not None else dest.stat().st_mtime_ns
        sources[name] = [1, 1000 + len(sources), len(PNG), mtime, mtime]
    record.tasks[task].artifacts = entries
    records.write_record(run_dir, record)
    index_path = records.artifact_sources_path(run_dir)
    index = json.loads(index_path.read_text()) if index_path.exists() else {}
    index[task] = sources
    index_path.write_text(json.dumps(index))


def test_outputs_come_after_the_tasks_and_every_image_is_one_click_away(flank_home: Path) -> None:
    home = Home()
    paths = make_project(home)
    run_id = make_run(paths, tasks={"plots": [], "report": ["plots"]})
    names = [f"figures/plot_{i:02d}.png" for i in range(MAX_INLINE_IMAGES + 6)]
    keep(paths, run_id, "plots", names)
    build.rebuild_all(home)
    run_page = (home.site_dir / "demo" / "nightly" / str(run_id) / "index.html").read_text()
    # status, tasks and timing come before the outputs
    order = [
        run_page.index(s)
        for s in ("<h1>", "<h2>Tasks</h2>", "<h2>Timeline</h2>", 'table class="tasks', "<h2>Outputs</h2>")
    ]
    assert order == sorted(order)
    # a few images open, the rest of the task's files folded away
    section = run_page[run_page.index("<h2>Outputs</h2>") :]
    assert re.search(r"<details class=\"more-outputs\">\s*<summary>\d+ more files of plots</summary>", section)
    # past the inline limit: said truthfully, and linked to a page that shows them all
    assert "too big" not in section
    beyond = names[MAX_INLINE_IMAGES:]
    said = re.findall(
        r'(plot_\d+\.png)</a> <span[^>]*>image · [^<]* · shown on the <a href="([^"]+)">outputs page</a>', section
    )
    assert [name for name, _ in said] == [n.split("/")[1] for n in beyond]
    assert {href for _, href in said} == {f"../../../demo/nightly/{run_id}/outputs.html"}
    outputs_page = (home.site_dir / "demo" / "nightly" / str(run_id) / "outputs.html").read_text()
    shown = re.findall(r'<img class="thumb" src="[^"]*?(figures/plot_\d+\.png)"', outputs_page)
    assert shown == names


def test_a_failed_task_does_not_show_old_files_as_if_it_made_them(flank_home: Path) -> None:
    home = Home()
    paths = make_project(home)
    ok = make_run(paths, tasks={"plots": []}, start=T0)
    old_ns = int((T0 + timedelta(seconds=5)).timestamp() * 1e9)
    keep(paths, ok, "plots", ["fig/old.png"], written_ns=old_ns)
    failed = make_run(
        paths, tasks={"plots": []}, status="failed", task_status={"plots": "failed"}, start=T0 + timedelta(days=1)
    )
    keep(paths, failed, "plots", ["fig/old.png"], written_ns=old_ns)
    keep_new = int((T0 + timedelta(days=1, seconds=5)).timestamp() * 1e9)
    run_dir = paths.run_dir("nightly", failed)
    index = json.loads(records.artifact_sources_path(run_dir).read_text())
    index["plots"]["fig/new.png"] = [1, 5, len(PNG), keep_new, keep_new]
    records.artifact_sources_path(run_dir).write_text(json.dumps(index))
    (records.artifacts_dir(run_dir, "plots") / "fig" / "new.png").write_bytes(PNG)
    record = records.read_record(run_dir)
    (record.tasks["plots"].artifacts or []).append(
        {"path": "fig/new.png", "size": len(PNG), "kept": True, "note": None}
    )
    records.write_record(run_dir, record)
    build.rebuild_all(home)
    page = (home.site_dir / "demo" / "nightly" / str(failed) / "index.html").read_text()
    section = page[page.index("<h2>Outputs</h2>") :]
    old = section[section.index("fig/old.png") :]
    old = old[: old.index("</li>")]
    new = section[section.index("fig/new.png") :]
    new = new[: new.index("</li>")]
    assert f"unchanged since #{ok}" in old and "not made by this run" in old
    assert "unchanged" not in new
    assert os.path.exists(home.site_dir / "demo" / "nightly" / str(failed) / "outputs.html")


@pytest.mark.slow
def test_big_images_get_a_real_thumbnail_once_and_link_the_original(flank_home: Path) -> None:
    """issue 19 friction 6: a run page on a phone loaded ~3 MB of full-size plots as "thumbnails"."""
    from PIL import Image

    home = Home()
    paths = make_project(home)
    run_id = make_run(paths, tasks={"plots": []})
    keep(paths, run_id, "plots", ["figures/big.png", "figures/small.png"])
    kept = records.artifacts_dir(paths.run_dir("nightly", run_id), "plots") / "figures"
    Image.merge("RGB", [Image.effect_noise((1600, 1200), 60 + i) for i in range(3)]).save(kept / "big.png")
    os.chmod(kept / "big.png", 0o644)  # as run/artifacts.py keeps files, whatever this process's umask
    record = records.read_record(paths.run_dir("nightly", run_id))
    (record.tasks["plots"].artifacts or [])[0]["size"] = (kept / "big.png").stat().st_size
    records.write_record(paths.run_dir("nightly", run_id), record)
    build.rebuild_all(home)
    run_folder = home.site_dir / "demo" / "nightly" / str(run_id)
    page = (run_folder / "index.html").read_text()
    link, src = re.search(r'<a href="([^"]*figures/big\.png)"[^>]*><img class="thumb" src="([^"]+)"', page).groups()
    assert link.endswith("artifacts/plots/figures/big.png") and src != link
    thumb = run_folder / src.split(f"/{run_id}/", 1)[1]
    with Image.open(thumb) as im:
        assert max(im.size) <= 480
    assert thumb.stat().st_size * 20 < (kept / "big.png").stat().st_size
    # a small image is its own thumbnail
    assert re.search(r'<img class="thumb" src="[^"]*figures/small\.png"', page)
    # made once: a rebuild leaves it alone
    before = thumb.stat().st_mtime_ns
    build.rebuild_all(home)
    assert thumb.stat().st_mtime_ns == before
    # the next run kept the unchanged plot as a hard link to this run's copy: its thumbnail is shared too
    second = make_run(paths, tasks={"plots": []})
    keep(paths, second, "plots", ["figures/big.png"])
    again = records.artifacts_dir(paths.run_dir("nightly", second), "plots") / "figures" / "big.png"
    again.unlink()
    os.link(kept / "big.png", again)
    record = records.read_record(paths.run_dir("nightly", second))
    (record.tasks["plots"].artifacts or [])[0]["size"] = again.stat().st_size
    records.write_record(paths.run_dir("nightly", second), record)
    build.draw_run(paths, "nightly", second)
    shared = home.site_dir / "demo" / "nightly" / str(second) / "artifacts" / "plots" / "figures" / "big.png.thumb.webp"
    assert os.path.samestat(shared.stat(), thumb.stat())


@pytest.mark.slow
def test_a_real_failed_run_marks_the_plot_it_did_not_redraw(tmp_path: Path, flank_home: Path) -> None:
    """A real push and two real runs: #2 dies before drawing; its page must not claim #1's plot."""
    from helpers.cli import run_flank
    from helpers.deployed import deploy

    yml = (
        "persist: [results]\npipelines:\n  nightly:\n    tasks:\n      plots:\n"
        "        run: sh plots.sh\n        artifacts: [results/*.png]\n"
    )
    script = "[ ! -e results/plot.png ] || exit 3\nprintf PNG > results/plot.png\n"
    deploy(tmp_path, yml, {"plots.sh": script})
    run_flank("run", "demo", "nightly", check=True)
    assert run_flank("run", "demo", "nightly").returncode != 0
    page = (flank_home / "site" / "demo" / "nightly" / "2" / "index.html").read_text()
    item = page[page.index("results/plot.png") :]
    assert "not made by this run, unchanged since #1" in item[: item.index("</li>")]
    first = (flank_home / "site" / "demo" / "nightly" / "1" / "index.html").read_text()
    assert "not made by this run" not in first
