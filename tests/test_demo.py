"""`make demo`: the main scenario of sam-app on the local cloud loses no order."""

from __future__ import annotations

import re
import subprocess
import sys
import time

from edakit.paths import ROOT


def test_demo_places_a_spike_and_accounts_for_every_order():
    """Every placed order is settled or in a DLQ; poison orders reach the DLQ after maxReceiveCount.

    https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html
    """
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "edakit", "demo"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    wall = time.perf_counter() - started
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert int(re.search(r"orders placed\s+(\d+)", out).group(1)) == 120
    assert int(re.search(r"lost\s+(-?\d+)", out).group(1)) == 0
    dead_orders = re.findall(r"- order \w+ \(demo-\d+\): (.*)", out)
    assert dead_orders, "the seeded scenario has poison orders, which must end in a DLQ"
    assert all("is not in the catalogue" in reason for reason in dead_orders)
    assert re.search(r"retries\s+[1-9]\d* SQS redeliveries", out), "poison orders are redelivered before the DLQ"
    assert "Traceback" not in out + done.stderr
    assert wall < 120


def test_demo_on_a_template_that_is_not_there_says_so_without_a_traceback(tmp_path):
    """A bad command gets a clear error, not a library traceback."""
    done = subprocess.run([sys.executable, "-m", "edakit", "demo", str(tmp_path / "nowhere")], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "cannot read template" in done.stderr
    assert "Traceback" not in done.stderr
