"""The OpenTelemetry tracing API behind ``Telemetry.span``, and the exemplars it gives the
duration histograms.

Imported only when tracing is on, so the package works without OpenTelemetry. The API (not the
SDK) is used: a host that configured a ``TracerProvider`` gets real spans, one that did not gets
OpenTelemetry's own non-recording ones.
"""

from __future__ import annotations

from typing import Any

from cadmetrics.contract.model import SpanKind, SpanSpec
from cadmetrics.errors import TelemetryError

try:
    from opentelemetry import trace
except ImportError as exc:  # pragma: no cover - exercised by the nometrics environment
    raise TelemetryError("tracing needs the OpenTelemetry API: pip install 'cadmetrics[otel]'") from exc

_SCOPE = "cadmetrics"
_KINDS = {kind: getattr(trace.SpanKind, kind.value.upper()) for kind in SpanKind}


class Tracer:
    """Starts declared spans on ``provider`` (the global TracerProvider when None)."""

    def __init__(self, provider: Any = None, version: str = "") -> None:
        self._tracer = (provider or trace.get_tracer_provider()).get_tracer(_SCOPE, version or None)

    def start(self, spec: SpanSpec, attributes: dict[str, Any]) -> Any:
        return self._tracer.start_as_current_span(spec.name, kind=_KINDS[spec.kind], attributes=attributes)


def current_exemplar() -> dict[str, str] | None:
    """The active span's trace and span ids as exemplar labels (OpenMetrics ``trace_id`` and
    ``span_id``, hex as W3C trace context writes them), or None outside a sampled span."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid or not context.trace_flags.sampled:
        return None
    return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}
