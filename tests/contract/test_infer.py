"""``contract infer`` on an application of our own (tests/contract/platform_app.py): the draft
lints clean, verifies the application's own exposition with no violation, marks its guesses,
is the same text twice, and with ``--update`` holds only what is new."""

from __future__ import annotations

import importlib
import io
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from cadmetrics.cli import main
from cadmetrics.contract.compose import load_contract
from cadmetrics.contract.declarations import read_declarations
from cadmetrics.contract.draft import render_draft
from cadmetrics.contract.infer import infer_contract
from cadmetrics.contract.lint import lint
from cadmetrics.contract.model import Contract, MetricType
from cadmetrics.contract.observed import from_exposition, from_otlp, from_registry
from cadmetrics.contract.verify import verify

pytest.importorskip("prometheus_client")

APP = "tests.contract.platform_app"


@pytest.fixture
def app() -> Iterator[ModuleType]:
    """The application, freshly imported (its registry filled as it loads) and serving."""
    sys.modules.pop(APP, None)
    module = importlib.import_module(APP)
    module.serve_some_traffic()
    yield module
    sys.modules.pop(APP, None)


def _load(text: str, tmp_path: Path, name: str = "draft.yaml") -> tuple[Path, Contract]:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path, load_contract(path, library=False, entry_points=False)  # lint errors would raise


@pytest.mark.parametrize("openmetrics", [False, True], ids=["classic", "openmetrics"])
def test_a_draft_from_an_exposition_lints_clean_and_verifies_it(
    app: ModuleType, tmp_path: Path, openmetrics: bool
) -> None:
    text = app.exposition(openmetrics)
    draft = render_draft(infer_contract([from_exposition(text, "app.prom")]))
    _, contract = _load(draft, tmp_path)
    assert lint(contract) == []
    report = verify(from_exposition(text, "app.prom"), contract)
    assert report.errors == (), report.render()
    # many prefixes, counters by the name prometheus_client exposes, custom buckets kept
    assert set(contract.namespaces) >= {"auth", "billing", "cache", "ingest", "queue", "search", "storage"}
    assert contract.require("billing_invoices_total").type is MetricType.COUNTER
    assert contract.require("search_query_duration_seconds").buckets == (0.002, 0.01, 0.05, 0.2, 1.0, 5.0)
    assert contract.require("build_info").type is MetricType.GAUGE
    assert contract.require("process_cpu_seconds_total").provided_by == "prometheus_client"
    assert "render_time_seconds: a summary" in draft  # listed, not declared


def test_every_guess_is_marked_and_facts_are_not(app: ModuleType) -> None:
    draft = render_draft(infer_contract([from_exposition(app.exposition(), "app.prom")]))
    lines = {line.split("#")[0].strip(): line for line in draft.splitlines() if line.startswith("  ")}
    assert "guess: from the name's suffix _bytes" in lines["unit: bytes"]
    assert "guess: closed: the 2 values seen in one scrape" in lines["currency: {values: [EUR, USD]}"]
    assert "guess: open: 24 distinct values seen" in lines["tenant: open"]
    assert "guess:" not in lines["buckets: [0.002, 0.01, 0.05, 0.2, 1, 5]"]
    assert "guess:" not in lines["help: Invoices sent."]


def test_the_same_input_gives_the_same_text(app: ModuleType) -> None:
    text = app.exposition()
    first = render_draft(infer_contract([from_exposition(text, "app.prom")]))
    second = render_draft(infer_contract([from_exposition(text, "app.prom")]))
    assert first == second


def test_a_live_registry_keeps_the_labels_and_buckets_of_metrics_without_series(
    app: ModuleType, tmp_path: Path
) -> None:
    registry = app.REGISTRY
    draft = infer_contract([from_registry(registry, "registry")], read_declarations(registry))
    _, contract = _load(render_draft(draft), tmp_path)
    failures = contract.require("billing_payment_failures_total")
    assert failures.label_names == ("reason",) and not failures.label("reason").closed  # type: ignore[union-attr]
    payload = contract.require("ingest_payload_bytes")
    assert payload.label_names == ("format",)
    assert payload.buckets == (1e3, 1e5, 1e7, 1e9)
    # and the registry's first series, once they exist, verify clean
    app.BILLING_FAILURES.labels("card_declined").inc()
    app.INGEST_PAYLOAD.labels("stl").observe(5e5)
    report = verify(from_exposition(app.exposition(), "later"), contract)
    assert report.errors == (), report.render()


def test_a_registry_without_readable_declarations_is_said_so() -> None:
    class Plain:
        def collect(self) -> list[object]:
            return []

    declarations = read_declarations(Plain())
    assert declarations.by_name == {}
    assert "label names of metrics without series could not be read" in declarations.notes[0]
    assert "# Note: Plain has no _collector_to_names" in render_draft(infer_contract([], declarations))


def test_update_drafts_only_the_additions(app: ModuleType, tmp_path: Path) -> None:
    registry = app.REGISTRY
    first, _ = _load(
        render_draft(infer_contract([from_registry(registry, "v1")], read_declarations(registry))), tmp_path
    )
    app.grow()
    existing = load_contract(first, library=False, entry_points=False)
    update = infer_contract([from_registry(registry, "v2")], read_declarations(registry), existing=existing)
    assert [m.spec.name for m in update.metrics] == ["export_jobs_total"]
    assert update.namespaces == ("export",)
    assert (
        "queue_depth",
        "label 'queue' has new value(s) ['bulk']: add them to its values",
    ) in update.changes
    text = render_draft(update)
    assert f"# Additions to {first}" in text
    second, _ = _load(text, tmp_path, "additions.yaml")
    both = load_contract(first, second, library=False, entry_points=False)  # no collision, lint clean
    assert "export_jobs_total" in both and "queue_depth" in both


def test_otlp_metrics_data_is_drafted_under_the_exporters_names(tmp_path: Path) -> None:
    pytest.importorskip("opentelemetry.sdk.metrics")
    pytest.importorskip("opentelemetry.exporter.otlp.proto.common.metrics_encoder")
    from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    meter = provider.get_meter("shop")
    meter.create_counter("shop_orders", description="Orders placed.").add(2, {"channel": "web"})
    meter.create_histogram("shop_checkout_duration", unit="s", description="Checkout time.").record(
        0.3, {"channel": "web"}
    )
    data = reader.get_metrics_data()
    assert data is not None
    request = encode_metrics(data)
    provider.shutdown()
    empty = Contract(parts=(), metrics=())
    observation = from_otlp(request.SerializeToString(), empty, origin="shop.otlp")
    _, contract = _load(render_draft(infer_contract([observation])), tmp_path)
    assert contract.require("shop_orders_total").help == "Orders placed."
    duration = contract.require("shop_checkout_duration_seconds")
    assert duration.type is MetricType.HISTOGRAM and duration.label_names == ("channel",)
    assert verify(from_otlp(request, contract), contract).errors == ()


def test_the_command_drafts_from_a_file_and_from_a_registry(app: ModuleType, tmp_path: Path) -> None:
    exposition = tmp_path / "app.prom"
    exposition.write_text(app.exposition(), encoding="utf-8")
    out = tmp_path / "draft.yaml"
    assert main(["contract", "infer", "--exposition", str(exposition), "--output", str(out)]) == 0
    assert main(["contract", "lint", "--standalone", str(out)]) == 0
    assert (
        main(["contract", "verify", "--standalone", "--contract", str(out), "--exposition", str(exposition)])
        == 0
    )
    printed = io.StringIO()
    sys_stdout, sys.stdout = sys.stdout, printed
    try:
        assert main(["contract", "infer", "--registry", f"{APP}:REGISTRY", "--closed-max", "0"]) == 0
    finally:
        sys.stdout = sys_stdout
    assert "currency: open" in printed.getvalue()  # --closed-max 0: every label open
    assert "reason: open" in printed.getvalue()  # a label with no series yet, from the registry


def test_the_command_says_what_is_missing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["contract", "infer"]) == 2
    assert "needs a source" in capsys.readouterr().err
    assert main(["contract", "infer", "--registry", "no_such_module_here:R"]) == 2
    assert "cannot import no_such_module_here" in capsys.readouterr().err


def test_a_closed_set_never_exceeds_what_the_loader_admits(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from cadmetrics.contract import loader

    monkeypatch.setattr(loader, "MAX_LABEL_VALUES", 3)
    lines = ["# TYPE app_jobs_total counter"] + [f'app_jobs_total{{queue="q{n}"}} 1' for n in range(5)]
    draft = infer_contract([from_exposition("\n".join(lines) + "\n", "app.prom")], closed_max=1000)
    _, contract = _load(render_draft(draft), tmp_path)
    assert not contract.require("app_jobs_total").label("queue").closed  # type: ignore[union-attr]
