"""Fixtures of the telemetry tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from cadmetrics.telemetry.capture import in_memory_tracing


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy between an OTLP exporter and the loopback receiver, and no exporter settings
    from outside (for tests that export over OTLP/HTTP)."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    for name in ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def traced() -> Iterator[tuple[Any, Any]]:
    """An SDK TracerProvider keeping its spans in memory, and its exporter (skips without the
    OpenTelemetry SDK)."""
    provider, exporter = in_memory_tracing()
    if provider is None:
        pytest.skip("tracing needs the OpenTelemetry SDK")
    yield provider, exporter
    provider.shutdown()
