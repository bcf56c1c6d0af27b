"""edakit.spike as a learner uses it: the README's own snippet runs, and the notebook reads the
chapter's spikes back as the results they were."""

from __future__ import annotations

import contextlib
import io
import json
import re

import pytest

from edakit.paths import CHAPTERS
from edakit.spike import SPIKE_FILE, Spike, as_document, load

README = CHAPTERS / "10-scale" / "README.md"
ROOT = CHAPTERS.parent


def readme_snippet() -> str:
    """The ```python block after "In Python" in chapter 10's README."""
    match = re.search(r"^In Python\b.*?\n```python\n(.*?)^```", README.read_text(), re.S | re.M)
    assert match, f"{README.relative_to(ROOT)}: no ```python block after \"In Python\""
    return match.group(1)


@pytest.fixture(scope="module")
def snippet_run() -> tuple[dict, str]:
    """The README's snippet, run as a learner runs it from the repository: its names, and what it printed."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(ROOT)  # the snippet names the stage by its path from the repository
        namespace: dict = {}
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(readme_snippet(), str(README), "exec"), namespace)
    return namespace, printed.getvalue()


def test_the_readmes_python_snippet_runs_a_spike_with_its_knobs(snippet_run: tuple[dict, str]) -> None:
    """The snippet deploys stage 10 with OrdersMaximumConcurrency 3 and runs a small spike on one
    shard: at most 3 batches run at once, nothing is throttled, every order is finished.

    https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html
    """
    namespace, printed = snippet_run
    result = namespace["result"]
    assert len(result.placed_at) > 0 and result.peak_backlog > 0
    assert result.peak_concurrency <= 3 and result.throttles == 0
    assert result.unfinished == 0 == result.dead_lettered
    assert result.knobs.shard_count == 1
    assert printed.split()[0] == str(result.peak_backlog)


def test_invocations_since_gives_the_later_invocations_in_order(snippet_run: tuple[dict, str]) -> None:
    """What run_spike reads each virtual second: the invocations after the first n, as
    invocations() lists them (CloudWatch's IteratorAge comes from the analytics ones).

    https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html
    """
    cloud = snippet_run[0]["cloud"]
    everything = cloud.invocations()
    assert len(everything) > 10
    assert cloud.invocations_since(10) == everything[10:]
    assert cloud.invocations_since(len(everything)) == []


def test_the_chapters_spikes_load_as_the_results_that_wrote_them() -> None:
    """load() gives back each run's SpikeResult: written again, they are spike.json to the byte.

    https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/working_with_metrics.html
    """
    results = load()
    assert list(results) == ["baseline", "MaximumConcurrency 2", "reserved concurrency 2", "1 shard"]
    spike = Spike(**json.loads(SPIKE_FILE.read_text())["spike"])
    assert as_document(results, spike) == SPIKE_FILE.read_text()
    capped = results["MaximumConcurrency 2"]
    assert capped.peak_concurrency == 2 and capped.knobs.maximum_concurrency == 2
    assert capped.peak_backlog == max(s.visible + s.in_flight for s in capped.samples) > 0
