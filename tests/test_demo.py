"""`make demo`: the main scenario of sam-app on the local cloud loses no order."""

from __future__ import annotations

import re
import subprocess
import sys
import time

from tests.conftest import ROOT


def test_demo_places_a_spike_and_accounts_for_every_order():
    """Every placed order is recorded or in the DLQ; poison orders reach the DLQ after maxReceiveCount.

    https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html
    """
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "edakit", "demo"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    wall = time.perf_counter() - started
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    numbers = {key: int(re.search(rf"{key}\s+(\d+)", out).group(1)) for key in ("orders placed", "orders recorded", "lost")}
    dlq = int(re.search(r"DLQ contents\s+(\d+)", out).group(1))
    assert numbers["orders placed"] == 300
    assert numbers["lost"] == 0
    assert numbers["orders recorded"] + dlq == 300
    assert dlq > 0, "the seeded scenario has poison orders"
    assert out.count("is not in the catalogue") == dlq
    assert "Traceback" not in out + done.stderr
    assert wall < 60
