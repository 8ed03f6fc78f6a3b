"""`/metrics` in Prometheus' text format, through prometheus-client.

Each HTTP app has a registry of its own: tool calls by tool and outcome (a counter and a
duration histogram, fed by the call path through `Runtime.call_observers`), and gauges read
when scraped: the pool's connections and waiters, the local embedder's queue, the sessions
open and the tool calls in flight. The batch sizes of the local embedder are a histogram.
No series names a tenant unless `BULKHEAD_METRICS_TENANT_LABEL` says so.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from mcp_server.runtime import Runtime

logger = logging.getLogger(__name__)

# Tool calls take from about a millisecond (a refused argument) to seconds (reflect on a model).
DURATION_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class RuntimeGauges(Collector):
    """What the runtime holds right now, read at each scrape."""

    def __init__(self, runtime: Runtime, sessions: Callable[[], int], in_flight: Callable[[], int]) -> None:
        self.runtime = runtime
        self.sessions = sessions
        self.in_flight = in_flight

    def collect(self) -> Iterator[Metric]:
        pool = self.runtime.stores.pool
        values = [
            ("bulkhead_pool_connections", "Database connections the pool holds open.", pool.get_size()),
            ("bulkhead_pool_idle_connections", "Open database connections not in use.", pool.get_idle_size()),
            ("bulkhead_pool_max_connections", "The most connections the pool may open.", pool.get_max_size()),
            (
                "bulkhead_pool_waiting",
                "Tenant transactions waiting for a database connection.",
                self.runtime.stores.waiting.count,
            ),
            ("bulkhead_sessions_open", "MCP sessions open on this process.", self.sessions()),
            ("bulkhead_tool_calls_in_flight", "Tool calls being handled now.", self.in_flight()),
        ]
        queued = getattr(self.runtime.embedder, "queued", None)
        if isinstance(queued, int):
            values.append(("bulkhead_embedder_queued_texts", "Texts waiting for the local model's next run.", queued))
        for name, documentation, value in values:
            yield GaugeMetricFamily(name, documentation, value=value)


class Metrics:
    """The registry one HTTP process serves at `/metrics`, and who may read it."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        sessions: Callable[[], int],
        in_flight: Callable[[], int],
        protected: bool,
    ) -> None:
        settings = runtime.settings
        self.registry = CollectorRegistry(auto_describe=True)
        self.tenant_label = settings.metrics_tenant_label
        labels = ("tool", "outcome", "tenant") if self.tenant_label else ("tool", "outcome")
        self.calls = Counter("bulkhead_tool_calls", "Tool calls by tool and outcome.", labels, registry=self.registry)
        self.durations = Histogram(
            "bulkhead_tool_call_duration_seconds",
            "How long tool calls took, by tool.",
            ("tool", "tenant") if self.tenant_label else ("tool",),
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.batches = Histogram(
            "bulkhead_embedder_batch_texts",
            "Texts per run of the local embedding model.",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(RuntimeGauges(runtime, sessions, in_flight))
        runtime.call_observers.append(self.observe_call)
        if hasattr(runtime.embedder, "on_batch"):
            runtime.embedder.on_batch = self.batches.observe  # type: ignore[union-attr]
        self.key = settings.metrics_key.get_secret_value().encode() if settings.metrics_key else None
        self.protected = protected
        if self.tenant_label:
            logger.warning(
                "BULKHEAD_METRICS_TENANT_LABEL is on: tool-call metrics hold one series per tenant, tool and "
                "outcome, which a Prometheus scraping many tenants may not want to hold"
            )

    def observe_call(self, tenant: str, tool: str, outcome: str, seconds: float) -> None:
        """Count one tool call (the call path's observer)."""
        if self.tenant_label:
            self.calls.labels(tool, outcome, tenant).inc()
            self.durations.labels(tool, tenant).observe(seconds)
        else:
            self.calls.labels(tool, outcome).inc()
            self.durations.labels(tool).observe(seconds)

    def allowed(self, request: Request) -> bool:
        """Whether `request` may read the metrics: with the metrics key, or freely when unprotected."""
        if not self.protected:
            return True
        if self.key is None:
            return False
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self.key)

    async def endpoint(self, request: Request) -> Response:
        """The `/metrics` route."""
        if not self.allowed(request):
            detail = (
                "metrics need BULKHEAD_METRICS_KEY as a bearer key" if self.key else "BULKHEAD_METRICS_KEY is not set"
            )
            return PlainTextResponse(
                f"{detail}\n", status_code=401, headers={"WWW-Authenticate": 'Bearer realm="metrics"'}
            )
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)
