"""`make bench`: how fast the local cloud runs the finished system, written to build/bench.md.

It measures, each figure the median of several runs:

- orders per wall second, end to end through the finished system (sam-app/): the storefront
  puts the orders, the local cloud routes, queues, invokes and retries until nothing is left;
- the local cloud's overhead: the run's wall time over the time the functions' handlers took
  themselves, with the same events (the rest is routing, polling, scheduling and moto);
- virtual seconds simulated per wall second;
- cost per order as the number of orders grows: N and 10 x N orders (10 times the orders
  should take at most 11 times the time), placed steadily and all at once (then the whole
  burst waits in OrdersQueue, where moto's receive scans the backlog);
- the wall time of every chapter's notebook and of the docs build.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .paths import NOTEBOOKS, ROOT, SAM_APP
from .scenarios import carts, place_steadily, seed_every_product

STOCK_PER_SKU = 1_000_000


@dataclass(frozen=True)
class Run:
    orders: int
    wall_seconds: float
    handler_seconds: float
    virtual_seconds: float
    invocations: int
    backlog: int = 0   # messages waiting in OrdersQueue once every order was placed

    @property
    def orders_per_second(self) -> float:
        return self.orders / self.wall_seconds

    @property
    def overhead(self) -> float:
        return self.wall_seconds / self.handler_seconds if self.handler_seconds else float("inf")


def run_orders(orders: int, template: Path = SAM_APP / "template.yaml", seed: int = 5, per_second: int = 10) -> Run:
    """Place `orders` orders, `per_second` a virtual second, and run until idle; time it all."""
    from . import runtime
    from .cloud import LocalCloud

    handler_time = [0.0]
    original = runtime.Function.run

    def timed(self: Any, event: Any, now: Callable[[], float], trigger: str) -> Any:
        started = time.perf_counter()
        try:
            return original(self, event, now, trigger)
        finally:
            handler_time[0] += time.perf_counter() - started

    runtime.Function.run = timed  # type: ignore[method-assign]
    try:
        with LocalCloud.from_template(template) as cloud:
            seed_every_product(cloud, STOCK_PER_SKU)
            orders_placed = carts(random.Random(seed), orders)
            handler_time[0] = 0.0
            started, virtual_start = time.perf_counter(), cloud.clock.elapsed
            place_steadily(cloud, orders_placed, per_second)
            wall = time.perf_counter() - started
            return Run(orders, wall, handler_time[0], cloud.clock.elapsed - virtual_start, len(cloud.invocations()))
    finally:
        runtime.Function.run = original  # type: ignore[method-assign]


def run_burst(orders: int, seed: int = 5) -> Run:
    """Place `orders` orders at once, with order processing capped at 2 batches of 2 virtual seconds,
    so that the whole burst waits in OrdersQueue: does the cost per order grow with the backlog?"""
    from .cloud import LocalCloud
    from .scenarios import _shop_on_path

    _shop_on_path()
    from shop.storefront import Storefront

    with LocalCloud.from_template(SAM_APP / "template.yaml", parameters={"OrdersMaximumConcurrency": 2}) as cloud:
        seed_every_product(cloud, STOCK_PER_SKU)
        cloud.function("OrderProcessingFunction").duration = 2.0
        placed = carts(random.Random(seed), orders)
        storefront = Storefront(cloud.physical_id("ShopBus"))
        started, virtual_start = time.perf_counter(), cloud.clock.elapsed
        for start in range(0, orders, 10):
            storefront.place_orders(placed[start:start + 10])
        backlog = sum(cloud.queue_depth("OrdersQueue").values())
        cloud.run_until_idle()
        wall = time.perf_counter() - started
        return Run(orders, wall, 0.0, cloud.clock.elapsed - virtual_start, len(cloud.invocations()), backlog)


def median_run(orders: int, repeats: int, run: Callable[[int], Run] = run_orders) -> Run:
    runs = [run(orders) for _ in range(repeats)]
    return sorted(runs, key=lambda r: r.wall_seconds)[len(runs) // 2]


def notebook_seconds(repeats: int) -> dict[str, float]:
    from .notebooks import execute_notebook

    return {path.stem: statistics.median(execute_notebook(path)[1] for _ in range(repeats))
            for path in sorted(NOTEBOOKS.glob("[0-9][0-9]-*.py"))}


def docs_build_seconds(repeats: int, site: Path) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(site)],
                       cwd=ROOT, check=True, capture_output=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def table(small: Run, large: Run, notebooks: dict[str, float], docs: float | None, repeats: int,
          bursts: tuple[Run, Run] | None = None) -> str:
    ratio = large.wall_seconds / small.wall_seconds
    scale = large.orders / small.orders
    lines = [
        f"# Benchmark of the local cloud ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs)",
        "",
        f"Each figure is the median of {repeats} run(s), on the finished system (`sam-app/template.yaml`).",
        "",
        "| measure | value |",
        "| --- | ---: |",
        f"| orders per wall second, end to end ({large.orders} orders) | {large.orders_per_second:.1f} |",
        f"| wall seconds per order | {large.wall_seconds / large.orders * 1000:.0f} ms |",
        f"| invocations per order | {large.invocations / large.orders:.1f} |",
        f"| overhead: run's wall time / the handlers' own time | {large.overhead:.2f} |",
        f"| virtual seconds per wall second | {large.virtual_seconds / large.wall_seconds:.1f} |",
        f"| {small.orders} orders | {small.wall_seconds:.1f} s |",
        f"| {large.orders} orders | {large.wall_seconds:.1f} s |",
        f"| {scale:.0f} x the orders takes | {ratio:.2f} x the time (flat cost per order: at most {scale * 1.1:.0f} x) |",
    ]
    if bursts:
        burst_small, burst_large = bursts
        lines += [
            f"| a burst of {burst_small.orders} orders at once (backlog {burst_small.backlog} messages) | "
            f"{burst_small.wall_seconds:.1f} s ({burst_small.wall_seconds / burst_small.orders * 1000:.0f} ms an order) |",
            f"| a burst of {burst_large.orders} orders at once (backlog {burst_large.backlog} messages) | "
            f"{burst_large.wall_seconds:.1f} s ({burst_large.wall_seconds / burst_large.orders * 1000:.0f} ms an order) |",
            f"| {burst_large.orders // burst_small.orders} x the burst takes | "
            f"{burst_large.wall_seconds / burst_small.wall_seconds:.2f} x the time, with the backlog in the queue |",
        ]
    if notebooks:
        lines += ["", "| notebook | wall seconds (kernel start included) |", "| --- | ---: |"]
        lines += [f"| {name} | {seconds:.1f} |" for name, seconds in notebooks.items()]
    if docs is not None:
        lines += ["", f"Docs build (`mkdocs build --strict`, every notebook executed): {docs:.0f} s."]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m edakit bench", description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=50, help="the small run; the large one is 10 times as many")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--burst", type=int, default=30,
                        help="orders placed at once (and 10 times as many) to measure the cost under a backlog; 0 skips it")
    parser.add_argument("--no-notebooks", action="store_true")
    parser.add_argument("--no-docs", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench.md")
    args = parser.parse_args(argv)
    if args.orders < 1 or args.repeats < 1 or args.burst < 0:
        print("error: --orders and --repeats must be at least 1, and --burst at least 0", file=sys.stderr)
        return 2
    print(f"bench: {args.orders} and {args.orders * 10} orders, {args.repeats} run(s) each...")
    small, large = median_run(args.orders, args.repeats), median_run(args.orders * 10, args.repeats)
    bursts = None
    if args.burst:
        bursts = (median_run(args.burst, args.repeats, run_burst), median_run(args.burst * 10, args.repeats, run_burst))
    notebooks = {} if args.no_notebooks else notebook_seconds(args.repeats)
    docs = None if args.no_docs else docs_build_seconds(args.repeats, ROOT / "build" / "bench-site")
    text = table(small, large, notebooks, docs, args.repeats, bursts)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    print(f"written to {args.out}")
    return 0
