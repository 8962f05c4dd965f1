"""The service's Prometheus metrics (prometheus-client), one registry per service instance."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

# The ``*_created`` series double every counter for no use here.
disable_created_metrics()  # type: ignore[no-untyped-call]

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
"""The ``Content-Type`` of :meth:`Metrics.render` (the text format every Prometheus reads)."""
SECONDS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
"""Answer time: from under a second (assistant) to the ring timeout (an agent)."""
MEDIA_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
GRAPH_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Family:
    """A labelled counter or gauge with the small interface the service uses."""

    def __init__(self, metric: Counter | Gauge, registry: CollectorRegistry) -> None:
        self.metric = metric
        self._registry = registry
        self._sample = metric._name + ("_total" if isinstance(metric, Counter) else "")

    def _child(self, labels: dict[str, str]) -> Any:
        return self.metric.labels(**labels) if labels else self.metric

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        """Add ``amount`` to the sample with these labels."""
        self._child(labels).inc(amount)

    def set(self, value: float, **labels: str) -> None:
        """Set the sample with these labels (gauges)."""
        self._child(labels).set(value)

    def value(self, **labels: str) -> float:
        """The current value of the sample with these labels (0 if never set)."""
        return self._registry.get_sample_value(self._sample, labels) or 0.0


class Metrics:
    """The service's metrics; ``replica`` labels the per-replica gauge."""

    def __init__(self, replica: str = "") -> None:
        self.registry = CollectorRegistry()
        self.replica = replica
        registry = self.registry

        def counter(name: str, help_text: str, *labels: str) -> Family:
            return Family(Counter(name, help_text, labels, registry=registry), registry)

        self.webhooks = counter(
            "relay_webhooks_total", "WhatsApp webhook deliveries by result.", "result"
        )
        self.calls = counter("relay_calls_total", "Calls started, by direction.", "direction")
        self.calls_active = Family(
            Gauge("relay_calls_active", "Calls not yet ended.", registry=registry), registry
        )
        self.graph_requests = counter(
            "relay_graph_requests_total",
            "Graph API requests by action and outcome.",
            "action",
            "outcome",
        )
        self.graph_retries = counter(
            "relay_graph_retries_total",
            "Graph API requests tried again after a transient failure, by action.",
            "action",
        )
        self.realtime_legs = counter(
            "relay_realtime_legs_total",
            "OpenAI Realtime legs (assistant, transcription) by status: running, or why stopped.",
            "leg",
            "outcome",
        )
        replica_calls = Gauge(
            "relay_replica_calls_active",
            "Calls not yet ended whose media this replica holds, by replica id.",
            ["replica"],
            registry=registry,
        )
        replica_calls.labels(replica=replica).set_function(lambda: self.calls_active.value())
        self.answer_seconds = Histogram(
            "relay_answer_seconds",
            "Seconds from a call's arrival (or an outbound call's dialling) until a person or "
            "the assistant answers it, by direction and by who answered.",
            ["direction", "by"],
            buckets=SECONDS_BUCKETS,
            registry=registry,
        )
        self.first_media_seconds = Histogram(
            "relay_first_media_seconds",
            "Seconds from when the caller's media can flow (an incoming call's arrival, an "
            "outbound call's answer) until the first RTP packet from WhatsApp arrives.",
            ["direction"],
            buckets=MEDIA_BUCKETS,
            registry=registry,
        )
        self.graph_seconds = Histogram(
            "relay_graph_request_seconds",
            "Graph API request latency by action (every attempt, whatever its outcome).",
            ["action"],
            buckets=GRAPH_BUCKETS,
            registry=registry,
        )

    def render(self) -> str:
        """All metrics in the Prometheus text format."""
        return generate_latest(self.registry).decode("utf-8")

    def histogram_count(self, histogram: Histogram, **labels: str) -> float:
        """How many observations a histogram holds for these labels (tests, diagnostics)."""
        return self.registry.get_sample_value(f"{histogram._name}_count", labels) or 0.0


class CallTimes:
    """Observes each call's answer time and time to first media from router notifications.

    Registered as a :class:`~relay_service.router.CallRouter` listener; it needs nothing from
    the router beyond the calls it announces.
    """

    ANSWERED = {"human": "agent", "assistant": "assistant"}

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self._seen: dict[int, _Timing] = {}

    def __call__(self, kind: str, call: Any, data: dict[str, Any]) -> None:
        """A router notification: ``call`` appeared or changed state."""
        if kind != "call":
            return
        timing = self._seen.get(id(call))
        if timing is None:
            timing = self._seen[id(call)] = _Timing(call.direction, time.monotonic())
            outbound = call.direction == "BUSINESS_INITIATED"
            if not outbound:
                timing.media_origin = timing.created
            # The bridge reports its first packet from the caller (once) to this callback.
            call.bridge.on_first_caller_audio = timing.first_audio_callback(self.metrics)
        if call.state == "ended":
            self._seen.pop(id(call), None)
            return
        by = self.ANSWERED.get(call.state)
        if by is not None and call.direction == "BUSINESS_INITIATED":
            by = "user"  # an outbound call is answered by the WhatsApp user it rings
        if by is not None and not timing.answered:
            timing.answered = True
            now = time.monotonic()
            self.metrics.answer_seconds.labels(direction=call.direction, by=by).observe(
                now - timing.created
            )
            if timing.media_origin is None:  # outbound: media can flow once the user answers
                timing.media_origin = now
                timing.observe_media(self.metrics)


class _Timing:
    def __init__(self, direction: str, created: float) -> None:
        self.direction = direction
        self.created = created
        self.answered = False
        self.media_origin: float | None = None
        self.first_audio: float | None = None
        self._media_observed = False

    def first_audio_callback(self, metrics: Metrics) -> Any:
        def heard(at: float) -> None:
            if self.first_audio is None:
                self.first_audio = at
                self.observe_media(metrics)

        return heard

    def observe_media(self, metrics: Metrics) -> None:
        if self._media_observed or self.first_audio is None or self.media_origin is None:
            return
        self._media_observed = True
        elapsed = max(0.0, self.first_audio - self.media_origin)
        metrics.first_media_seconds.labels(direction=self.direction).observe(elapsed)
