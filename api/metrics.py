"""Prometheus metrics of this worker: requests, latency, priorities given, review rate."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

REGISTRY = CollectorRegistry()
REQUESTS = Counter("clasificador_requests_total", "HTTP requests", ["method", "route", "status"], registry=REGISTRY)
LATENCY = Histogram("clasificador_request_seconds", "HTTP request latency", ["route"], registry=REGISTRY,
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
PRIORITIES = Counter("clasificador_priorities_total", "Priorities given", ["priority", "source"], registry=REGISTRY)
REVIEW = Counter("clasificador_needs_review_total", "Classifications sent to review", registry=REGISTRY)
STORE_GROUPS = Histogram("clasificador_store_group_size", "Classifications stored per transaction (group commit)",
                         registry=REGISTRY, buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 1024))
CLASSIFIED = Counter("clasificador_classifications_total", "Classifications made", registry=REGISTRY)


def record(result: dict) -> None:
    CLASSIFIED.inc()
    PRIORITIES.labels(result["priority"], result["source"]).inc()
    if result["needs_review"]:
        REVIEW.inc()
