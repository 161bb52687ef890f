"""Task graph layout cost: Graphviz dot vs the layout cache, for 10, 50 and 500 tasks; and the task grid.

    python bench/dag.py [--repeat 5] [--sizes 10,50,500]

For each size (a layered DAG with fan-out, fan-in and edges that skip layers):
  dot       a new DAG: `dot -Tjson0` runs (what the first page after a deploy pays)
  disk      another process, same DAG: the layout is read from FLANK_HOME/.flank/dag-layouts
  memory    the same process, same DAG (a full site rebuild draws many run pages)
  drawing   the SVG drawn from a known layout (paid by every page)
Then the pipeline page's task grid (30 runs x 50 tasks, each with its logs) with 40 vs 1,000 past runs:
the grid reads only the newest 30 records, so the ratio should stay near 1.
Prints figures and ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from flank_ops.site import dag_layout  # noqa: E402
from flank_ops.site.svg import DagNode, dag_svg  # noqa: E402


def make_dag(size: int, seed: int = 7) -> list[DagNode]:
    rng = random.Random(seed)
    layers = max(3, round(size**0.5))
    nodes: list[DagNode] = []
    by_layer: list[list[str]] = [[] for _ in range(layers)]
    for i in range(size):
        layer = 0 if i == 0 else 1 + (i - 1) * (layers - 1) // max(1, size - 1)
        name = f"task_{layer:02d}_{i:04d}"
        needs: set[str] = set()
        if layer:
            needs.add(rng.choice(by_layer[layer - 1]))
            for _ in range(rng.randint(0, 2)):
                earlier = by_layer[rng.randint(max(0, layer - 3), layer - 1)]
                needs.add(rng.choice(earlier))
        by_layer[layer].append(name)
        nodes.append(DagNode(name, tuple(sorted(needs))))
    return nodes


def timed(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_layout(sizes: list[int], repeat: int, tmp: Path) -> None:
    print(f"{'tasks':>6} {'edges':>6} {'dot':>10} {'disk':>10} {'memory':>10} {'drawing':>10}   dot/disk  dot/memory")
    for size in sizes:
        nodes = make_dag(size)
        dag = [(n.name, n.needs) for n in nodes]
        cache = tmp / f"layouts-{size}"
        reps = repeat if size <= 100 else max(1, repeat // 2)

        def cold() -> None:
            dag_layout.forget()
            dag_layout.layout(dag, None)

        def disk() -> None:
            dag_layout.forget()
            dag_layout.layout(dag, cache)

        dag_layout.layout(dag, cache)  # writes the cache file
        t_dot = timed(cold, reps)
        t_disk = timed(disk, repeat)
        dag_layout.layout(dag, cache)
        t_mem = timed(lambda: dag_layout.layout(dag, cache), repeat)
        t_draw = timed(lambda: dag_svg(nodes, "bench", cache), repeat)
        edges = sum(len(n.needs) for n in nodes)
        print(
            f"{size:>6} {edges:>6} {t_dot * 1000:>8.1f}ms {t_disk * 1000:>8.2f}ms {t_mem * 1000:>8.3f}ms "
            f"{t_draw * 1000:>8.2f}ms   {t_dot / t_disk:>7.0f}x  {t_dot / t_mem:>9.0f}x"
        )


def bench_grid(repeat: int, tmp: Path) -> None:
    from flank_ops.paths import Home
    from flank_ops.site.data import PAGE_SIZE, Warnings, pipeline_view
    from flank_ops.site.grid import task_grid
    from helpers.site_records import make_many_runs, make_project, make_run

    tasks = {n.name: list(n.needs) for n in make_dag(50)}
    figures = {}
    for past in (40, 1000):
        root = tmp / f"grid-{past}"
        os.environ["FLANK_HOME"] = str(root)
        home = Home(root)
        paths = make_project(home)
        make_many_runs(paths, "nightly", past - 40)  # older runs, written fast (they must not be read)
        for _ in range(40):
            make_run(paths, tasks=tasks)
        view = pipeline_view(paths, "nightly", None, Warnings(), history_count=PAGE_SIZE)
        order = list(tasks)
        figures[past] = timed(lambda: task_grid(paths, "nightly", view.recent, order), repeat)
    print(
        f"task grid, 30 runs x 50 tasks: {figures[40] * 1000:.1f}ms with 40 past runs, "
        f"{figures[1000] * 1000:.1f}ms with 1,000 (ratio {figures[1000] / figures[40]:.2f}; target <= 1.5)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sizes", default="10,50,500")
    args = parser.parse_args()
    if dag_layout.dot_executable() is None:
        sys.exit("Graphviz dot is not installed (sudo apt-get install graphviz)")
    with tempfile.TemporaryDirectory() as tmp:
        bench_layout([int(s) for s in args.sizes.split(",")], args.repeat, Path(tmp))
        bench_grid(args.repeat, Path(tmp))


if __name__ == "__main__":
    main()
