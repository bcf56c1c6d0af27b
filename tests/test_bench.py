"""`make bench` (edakit/bench.py) measures the finished system on the local cloud and writes a table."""

from __future__ import annotations

import re
from pathlib import Path

from edakit import bench


def test_bench_writes_the_table_of_its_measures(tmp_path: Path) -> None:
    out = tmp_path / "bench.md"
    assert bench.main(["--orders", "2", "--burst", "2", "--repeats", "1", "--no-notebooks", "--no-docs",
                       "--out", str(out)]) == 0
    text = out.read_text()
    rate = float(re.search(r"orders per wall second, end to end \(20 orders\) \| ([\d.]+)", text).group(1))
    overhead = float(re.search(r"the handlers' own time \| ([\d.]+)", text).group(1))
    per_order = float(re.search(r"invocations per order \| ([\d.]+)", text).group(1))
    assert rate > 0
    assert overhead >= 1, "the run cannot take less time than the handlers in it"
    assert per_order >= 5, "each order runs orders, inventory, payments, status and notifications"
    assert "10 x the orders takes" in text
    backlog = int(re.search(r"a burst of 20 orders at once \(backlog (\d+) messages\)", text).group(1))
    assert backlog >= 20, "a burst waits in OrdersQueue: at least its OrderPlaced messages"


def test_bad_arguments_are_refused(capsys) -> None:
    assert bench.main(["--orders", "0"]) == 2
    assert "--orders and --repeats must be at least 1" in capsys.readouterr().err
