"""The after-run step (finish/run_steps.py): it hands the site the record it holds, and a finished
run's page is drawn once — again only when a step after the drawing has a problem to show."""

from __future__ import annotations

import pytest

from flank_ops.finish import run_steps
from flank_ops.site import build
from helpers.sample_runs import finished_run, make_project, run_context
from helpers.servers import http_recorder, refused_port

FAILURE = """\
    pipelines:
      nightly:
        notify: [failure]
        tasks:
          extract: Rscript R/extract.R
          model: {run: Rscript R/model.R, needs: [extract]}
    """


def _webhook(url: str) -> str:
    return f'site_url = "http://vm.example:8083"\n[notify.webhook]\nurl = "{url}"\ntimeout = 5\n'


def _count_run_page_draws(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The run ids whose run page the site draws from now on (a spy around the real drawing)."""
    drawn: list[int] = []
    real = build._write_run_pages

    def spy(w: build._Writer, paths, pipeline: str, run_id: int, *args, **kwargs) -> bool:  # noqa: ANN001, ANN002, ANN003
        drawn.append(run_id)
        return real(w, paths, pipeline, run_id, *args, **kwargs)

    monkeypatch.setattr(build, "_write_run_pages", spy)
    return drawn


def test_a_finished_runs_page_is_drawn_once_from_the_record_the_step_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    with http_recorder() as hook:
        paths = make_project(flank_yml=FAILURE, settings_toml=_webhook(hook.url))
        record = finished_run(paths)
        record.summary = "1/2 ok; model failed (as the runner holds it)"  # not on disk yet: the step has it
        drawn = _count_run_page_draws(monkeypatch)

        outcomes = run_steps.finish_run(run_context(paths), record)

    assert outcomes["site"] == "ok" and outcomes["notify"] == "notify failure: webhook sent"
    assert drawn == [record.run_id]
    page = (paths.home.site_dir / "demo" / "nightly" / "1" / "index.html").read_text()
    assert "as the runner holds it" in page


def test_a_step_after_the_drawing_that_went_wrong_is_shown_on_the_page(monkeypatch: pytest.MonkeyPatch) -> None:
    with refused_port() as port:
        paths = make_project(flank_yml=FAILURE, settings_toml=_webhook(f"http://127.0.0.1:{port}/hook"))
        record = finished_run(paths)
        drawn = _count_run_page_draws(monkeypatch)

        outcomes = run_steps.finish_run(run_context(paths), record)

    assert "failed" in outcomes["notify"]
    assert drawn == [record.run_id, record.run_id]  # drawn again: there is something new to show
    page = (paths.home.site_dir / "demo" / "nightly" / "1" / "index.html").read_text()
    assert "notify failure: webhook failed (cannot connect" in page
