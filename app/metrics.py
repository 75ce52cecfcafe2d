"""Prometheus metrics (monitoring half of seed resource cfg-q9c5).

Each app gets its own registry, so two apps in one process (tests) never share counts.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.completions = Counter(
            "onboarding_completions_total",
            "completeOnboardingStep answers, by outcome (success, replayed, or an error code).",
            ["outcome"],
            registry=self.registry,
        )
        self.kpi_events = Counter(
            "kpi_events_recorded_total",
            "KPI analytics events persisted, by KPI id.",
            ["kpi_id"],
            registry=self.registry,
        )
        self.analytics_failures = Counter(
            "analytics_failures_total",
            "KPI events that could not be recorded (a failure record was written), by stage.",
            ["stage"],
            registry=self.registry,
        )
        self.request_latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency, by route and method.",
            ["route", "method"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
