"""A tiny Prometheus registry: counters and gauges rendered in the text exposition format."""

from __future__ import annotations

from collections import defaultdict

Labels = tuple[tuple[str, str], ...]


class Metric:
    """One metric family with labelled samples."""

    def __init__(self, name: str, help_text: str, kind: str) -> None:
        self.name = name
        self.help_text = help_text
        self.kind = kind
        self.samples: dict[Labels, float] = defaultdict(float)

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        """Add ``amount`` to the sample with these labels."""
        self.samples[tuple(sorted(labels.items()))] += amount

    def set(self, value: float, **labels: str) -> None:
        """Set the sample with these labels (gauges)."""
        self.samples[tuple(sorted(labels.items()))] = value

    def value(self, **labels: str) -> float:
        """The current value of the sample with these labels."""
        return self.samples.get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> str:
        """This family in the Prometheus text format."""
        lines = [f"# HELP {self.name} {self.help_text}", f"# TYPE {self.name} {self.kind}"]
        for labels, value in sorted(self.samples.items()):
            label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
            suffix = "{" + label_text + "}" if label_text else ""
            lines.append(f"{self.name}{suffix} {value:g}")
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    """The service's metrics."""

    def __init__(self) -> None:
        self.webhooks = Metric(
            "relay_webhooks_total", "WhatsApp webhook deliveries by result.", "counter"
        )
        self.calls = Metric("relay_calls_total", "Calls started, by direction.", "counter")
        self.calls_active = Metric("relay_calls_active", "Calls not yet ended.", "gauge")
        self.graph_requests = Metric(
            "relay_graph_requests_total", "Graph API requests by action and outcome.", "counter"
        )
        self.realtime_legs = Metric(
            "relay_realtime_legs_total",
            "OpenAI Realtime legs (assistant, transcription) by status: running, or why stopped.",
            "counter",
        )
        self.calls_active.set(0)

    def render(self) -> str:
        """All metrics in the Prometheus text format."""
        families = (
            self.webhooks,
            self.calls,
            self.calls_active,
            self.graph_requests,
            self.realtime_legs,
        )
        return "".join(family.render() for family in families)
