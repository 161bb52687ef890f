"""dir: and persist: resolved through a repo's files the way the kernel follows symlinks.

The trees here are plain dicts; the push and `flank validate` feed the same rules from git
(tests/deploy/hooks_test.py drives those end to end).
"""

from __future__ import annotations

import pytest

from flank_ops.config.load import load_config
from flank_ops.config.repo_paths import Entry, path_problems, resolve
from flank_ops.errors import ConfigErrors


class DictTree:
    """{"R/x.R": "file", "link": "-> target", "sub": "submodule"}; folders are implied."""

    def __init__(self, files: dict[str, str]) -> None:
        self.folders: dict[str, dict[str, Entry]] = {"": {}}
        for path, what in files.items():
            parts = path.split("/")
            for depth in range(len(parts) - 1):
                self.folders.setdefault("/".join(parts[:depth]), {})[parts[depth]] = Entry("tree", "")
                self.folders.setdefault("/".join(parts[: depth + 1]), {})
            kind = "link" if what.startswith("-> ") else "commit" if what == "submodule" else "blob"
            self.folders.setdefault("/".join(parts[:-1]), {})[parts[-1]] = Entry(kind, what[3:])

    def folder(self, path: str) -> dict[str, Entry] | None:
        return self.folders.get(path)

    def link_target(self, entry: Entry) -> str:
        return entry.oid


TREE_FILES = {
    "R/deeper/y.R": "file",
    "R/x.R": "file",
    "code": "-> R",
    "code2": "-> code/deeper",
    "up": "-> R/..",
    "loop_a": "-> loop_b",
    "loop_b": "-> loop_a",
    "out": "-> data/out",
    "vendor/lib": "submodule",
    "vendor/escape": "-> ../..",
}
TREE = DictTree(TREE_FILES)


@pytest.mark.parametrize(
    ("path", "where", "kind"),
    [
        ("R", "R", "tree"),
        ("code/deeper", "R/deeper", "tree"),
        ("code2", "R/deeper", "tree"),
        ("up/R", "R", "tree"),
        ("build/figures", "build/figures", "missing"),
        ("code/new", "R/new", "missing"),
        ("vendor/lib/src", "vendor/lib/src", "commit"),
        ("code/x.R", "R/x.R", "blob"),
    ],
)
def test_paths_that_stay_in_the_repo_resolve(path: str, where: str, kind: str) -> None:
    assert tuple(resolve(TREE, path)) == (where, kind)


@pytest.mark.parametrize(
    ("key", "path", "expected"),
    [
        ("dir", "loop_a", "dir: 'loop_a' goes through 'loop_a': too many levels of symlinks"),
        (
            "dir",
            "vendor/escape/x",
            "dir: 'vendor/escape/x' leads out of the repo: 'vendor/escape' is a symlink to '../..'",
        ),
        ("dir", "R/x.R/sub", "dir: 'R/x.R/sub' goes through 'R/x.R', a file in the repo, not a folder"),
        ("dir", "out", "dir: 'out' goes through 'out', a symlink to 'data/out', which is not in the repo"),
        (
            "persist",
            "code/deeper",
            "persist: 'code/deeper' is a symlink in the repo (to 'R/deeper'); a persisted "
            "folder must be the folder itself",
        ),
        ("persist", "code/x.R", "persist: 'code/x.R' is a file in the repo, not a folder"),
        ("persist", "vendor/lib/src", "persist: 'vendor/lib/src' is a git submodule; its files are not in the release"),
    ],
)
def test_paths_that_do_not_are_named(key: str, path: str, expected: str) -> None:
    [(message, _hint)] = path_problems(TREE, key, path, ())
    assert message == expected


def test_a_link_into_a_persisted_folder_is_not_dangling() -> None:
    assert path_problems(TREE, "dir", "out", ("data",)) == []


def test_problems_point_at_the_line_and_column_of_the_path() -> None:
    text = "persist: [data]\npipelines:\n  p:\n    tasks:\n      a: {run: pwd, dir: loop_a}\n"
    assert load_config(text).pipelines["p"].tasks["a"].dir == "loop_a"  # no tree: no repo checks
    with pytest.raises(ConfigErrors) as info:
        load_config(text, tree=TREE)
    assert [str(e) for e in info.value.errors] == [
        "flank.yml:5:26: dir: 'loop_a' goes through 'loop_a': too many levels of symlinks (remove the symlink loop)"
    ]


class RecordingTree(DictTree):
    """A DictTree that notes which folders were looked into."""

    def __init__(self, files: dict[str, str]) -> None:
        super().__init__(files)
        self.asked: set[str] = set()

    def folder(self, path: str) -> dict[str, Entry] | None:
        self.asked.add(path)
        return super().folder(path)


STILL_VALID_YML = """\
persist: [data, R/deeper/cache]
pipelines:
  nightly:
    tasks:
      a: {run: pwd, dir: code, outputs: [cells.txt]}
      b: {run: pwd, dir: R/deeper}
      c: {run: pwd, dir: ., matrix: [north, south]}
      d: {run: pwd, dir: code2, matrix: {region: [north, south]}}
      e: {run: pwd, needs: [a], dir: code, matrix_from: cells.txt}
      g: {run: pwd, dir: R}
  weekly:
    tasks:
      f: {run: pwd, dir: code}
"""


def test_still_valid_checks_every_path_load_config_checks_and_says_no_where_it_refuses() -> None:
    """issue 22: a push of an unchanged flank.yml checks its Config again (still_valid) instead of
    parsing it: the same dir: and persist: paths, looked up in the same folders, the same verdict."""
    from flank_ops.config.load import still_valid

    full = RecordingTree(TREE_FILES)
    config = load_config(STILL_VALID_YML, tree=full)
    again = RecordingTree(TREE_FILES)
    assert still_valid(config, again)
    assert again.asked == full.asked and {"", "R", "R/deeper"} <= full.asked
    for broken in ({"code": "-> /"}, {"R/deeper": "file"}, {"data": "file"}, {"code2": "-> missing"}):
        tree = DictTree({k: v for k, v in TREE_FILES.items() if not k.startswith(tuple(broken))} | broken)
        with pytest.raises(ConfigErrors):
            load_config(STILL_VALID_YML, tree=tree)
        assert not still_valid(config, tree), broken
