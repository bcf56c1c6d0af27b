"""The capacity model agrees with the local cloud at a scale both can run.

A small spike runs on stage 10's local cloud (edakit.spike) and through the model
(edakit.capacity) with the same arrivals, knobs and durations; OrdersQueue's backlog
(ApproximateNumberOfMessagesVisible + NotVisible, each virtual second) must agree.
"""

from __future__ import annotations

import dataclasses

import pytest

from edakit import capacity, spike
from edakit.cloud import LocalCloud
from edakit.paths import chapter

#: 200 orders in 60 virtual seconds; order processing takes 1.5 s a batch and at most 2
#: batches run at once, so a backlog builds (the spike's other durations, the template's
#: batch size, batching window, visibility timeout and payment failures).
SPIKE = spike.Spike(orders=200, seconds=60.0)
MAXIMUM_CONCURRENCY = 2
DURATIONS = dataclasses.replace(spike.SPIKE_DURATIONS, order_processing=1.5)
#: Seconds of the moving average both curves are compared on: the backlog of 2 pollers with
#: a 1-second batching window jumps by a batch (10 messages) from one second to the next.
SMOOTHING = 9
TOLERANCE = 0.10  # of the local cloud's peak backlog
PEAK_SECONDS = 3


def _backlog(samples: list) -> dict[float, int]:
    return {s.second: s.visible + s.in_flight for s in samples}


def _moving_average(series: dict[float, int], seconds: list[float], width: int) -> dict[float, float]:
    half = width // 2
    return {t: sum(series.get(t + k, 0) for k in range(-half, half + 1)) / width for t in seconds}


def test_the_model_gives_the_local_clouds_backlog_curve() -> None:
    """Both follow Lambda's SQS polling (5 pollers, then 300 a minute, capped by
    MaximumConcurrency; BatchSize and the batching window) and SQS's visibility timeout:
    https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html
    https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-parameters.html

    Tolerance: the peak backlogs within 10 % of each other; on a 9-second moving average,
    the curves within 10 % of the local cloud's peak at every second and their peaks within
    3 seconds; the message-seconds (the area under the curves) within 10 %.
    """
    # given the same spike on the local cloud ...
    with LocalCloud.from_template(chapter("10"),
                                  parameters=spike.Knobs(maximum_concurrency=MAXIMUM_CONCURRENCY).parameters()) as cloud:
        measured = spike.run_spike(cloud, SPIKE, spike.Knobs(), DURATIONS)
    # ... and through the model
    modelled = capacity.simulate(
        measured.placed_at, spike.Knobs(maximum_concurrency=MAXIMUM_CONCURRENCY), DURATIONS)
    cloud_backlog, model_backlog = _backlog(measured.samples), _backlog(modelled.samples)
    seconds = sorted(set(cloud_backlog) | set(model_backlog))
    peak = max(cloud_backlog.values())

    # then the peaks agree ...
    assert peak >= 20, "the spike must build a backlog for the comparison to mean anything"
    assert abs(max(model_backlog.values()) - peak) <= TOLERANCE * peak
    # ... and so do the smoothed curves, second by second
    cloud_curve = _moving_average(cloud_backlog, seconds, SMOOTHING)
    model_curve = _moving_average(model_backlog, seconds, SMOOTHING)
    worst = max(seconds, key=lambda t: abs(cloud_curve[t] - model_curve[t]))
    assert abs(cloud_curve[worst] - model_curve[worst]) <= TOLERANCE * peak, (
        f"at second {worst:.0f}: local cloud {cloud_curve[worst]:.1f}, model {model_curve[worst]:.1f} messages")
    assert abs(max(seconds, key=cloud_curve.get) - max(seconds, key=model_curve.get)) <= PEAK_SECONDS
    assert sum(model_backlog.values()) == pytest.approx(sum(cloud_backlog.values()), rel=TOLERANCE)
    # and neither throttled order processing (MaximumConcurrency, not throttles, holds the backlog)
    assert measured.throttles == modelled.throttles == 0
