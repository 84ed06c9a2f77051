"""``cadmetrics demo``: a walk through the library on real CAD files, its metrics served and
verified against the contract.

The walk (:mod:`cadmetrics.walkthrough`) extracts features, loads and refuses models, stores,
searches and migrates vectors and measures drift, all observed through one
:class:`~cadmetrics.Telemetry` on a Prometheus registry of its own. With ``--port`` the
registry is served on ``/metrics`` for ``--duration`` seconds while light traffic goes on; with
``--prometheus`` a local Prometheus (when installed) scrapes it, with the shipped alert rules
loaded. The summary ends with the verdict of the contract's verification of what was emitted.
"""

from __future__ import annotations

import shutil
import socket
import socketserver
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, TextIO

import attrs

from cadmetrics.contract.compose import packaged_contracts
from cadmetrics.contract.model import Contract
from cadmetrics.contract.observed import from_registry
from cadmetrics.contract.traces import from_spans, verify_spans
from cadmetrics.contract.verify import verify
from cadmetrics.health import health
from cadmetrics.telemetry.capture import in_memory_tracing
from cadmetrics.telemetry.facade import SPAN_OVERFLOW_METRIC, Telemetry
from cadmetrics.telemetry.health import MEDIA_TYPE
from cadmetrics.walkthrough import sample_files, traffic, walk


def run_demo(
    contract: Contract,
    out: TextIO,
    *,
    port: int | None = None,
    duration: float = 0.0,
    samples: Path | None = None,
    prometheus: bool = False,
) -> bool:
    """Run the demo, writing to ``out``; True when every extraction of a real part succeeded
    and the contract's verification passes. What failed is written to ``out``."""
    registry = _registry()
    tracer_provider, spans = in_memory_tracing()
    telemetry = Telemetry(
        contract, [registry] if registry is not None else [], tracer_provider=tracer_provider
    )
    workdir = Path(tempfile.mkdtemp(prefix="cadmetrics-demo-"))
    try:
        summary = walk(telemetry, workdir, samples)
        out.write("cadmetrics demo: what the walk did\n" + summary.render() + "\n")
        for problem in summary.problems:
            out.write(f"FAILED: {problem}\n")
        if registry is None:
            out.write("\nprometheus_client is not installed: metrics are no-ops. ")
            out.write("Install 'cadmetrics[all]' to serve and verify them.\n")
            return not summary.problems
        if port is not None:
            files, _ = sample_files(samples, workdir)
            _serve(
                registry,
                telemetry,
                files,
                port,
                workdir=workdir,
                duration=duration,
                prometheus=prometheus,
                out=out,
            )
        report = verify(from_registry(registry, "demo registry"), contract, require_all=True)
        if not telemetry.tracing:  # without OpenTelemetry no span is made, so none can overflow
            kept = tuple(v for v in report.violations if v.metric != SPAN_OVERFLOW_METRIC)
            report = attrs.evolve(report, violations=kept)
        traced = (
            verify_spans([from_spans(spans.get_finished_spans(), "demo spans")], contract) if spans else None
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if tracer_provider is not None:
            tracer_provider.shutdown()
    out.write("\n" + report.render() + "\n")
    if traced is not None:
        out.write(traced.render() + "\n")
        report = attrs.evolve(report, violations=report.violations + traced.errors)
    out.write(
        f"verdict: {'PASS' if report.ok else 'FAIL'}: the demo's metrics against the "
        f"{len(contract)} declared in the contract"
        + (f", its spans against the {len(contract.spans)} declared" if traced is not None else "")
        + "\n"
    )
    return report.ok and not summary.problems


def _registry() -> Any:
    """A Prometheus registry of the demo's own, or None without prometheus_client."""
    try:
        from prometheus_client import CollectorRegistry
    except ImportError:
        return None
    return CollectorRegistry()


def _serve(
    registry: Any,
    telemetry: Telemetry,
    files: list[Path],
    port: int,
    *,
    workdir: Path,
    duration: float,
    prometheus: bool,
    out: TextIO,
) -> None:
    components: list[Any] = []
    requests = traffic(telemetry, files, workdir, components)
    next(requests)  # the components exist, so /health answers about them from the first request
    server = _metrics_and_health_server(registry, telemetry, components, port)
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), name="cadmetrics-demo", daemon=True)
    thread.start()
    bound = server.server_address[1]
    out.write(
        f"\nserving the metrics on http://127.0.0.1:{bound}/metrics and the components' health on "
        f"http://127.0.0.1:{bound}/health for {duration:g} s\n"
    )
    watcher = _start_prometheus(bound, out) if prometheus else None
    out.flush()
    try:
        deadline = time.monotonic() + duration
        while time.monotonic() < deadline:
            next(requests)
            time.sleep(0.2)
    finally:
        if watcher is not None:
            watcher.terminate()
            watcher.wait(timeout=10)
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _metrics_and_health_server(registry: Any, telemetry: Telemetry, components: list[Any], port: int) -> Any:
    """``/metrics`` as prometheus_client serves it (OpenMetrics with exemplars when asked
    for), ``/health`` as the health report of ``components`` (``application/health+json``)."""
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    from prometheus_client import make_wsgi_app

    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ.get("PATH_INFO") == "/health":
            report = health(*components, telemetry=telemetry, service_id="cadmetrics-demo")
            body = report.to_json().encode()
            status = "200 OK" if report.http_status == 200 else "503 Service Unavailable"
            start_response(status, [("Content-Type", MEDIA_TYPE), ("Content-Length", str(len(body)))])
            return [body]
        answer: list[bytes] = metrics(environ, start_response)
        return answer

    class Server(socketserver.ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # scrapes are not news
            pass

    return make_server("127.0.0.1", port, app, server_class=Server, handler_class=QuietHandler)


def _start_prometheus(target_port: int, out: TextIO) -> subprocess.Popen[bytes] | None:
    binary = shutil.which("prometheus")
    if binary is None:
        out.write("prometheus is not installed (Debian: apt-get install prometheus): not started\n")
        return None
    directory = Path(tempfile.mkdtemp(prefix="cadmetrics-demo-prometheus-"))
    listen = _free_port()
    rules = packaged_contracts() / "alerts" / "cadmetrics.rules.yaml"
    config = directory / "prometheus.yml"
    config.write_text(
        prometheus_config(target_port, rules if rules.is_file() else None, scrape_interval="2s"),
        encoding="utf-8",
    )
    process = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={directory / 'data'}",
         f"--web.listen-address=127.0.0.1:{listen}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    out.write(
        f"prometheus scrapes it: http://127.0.0.1:{listen}/graph (alerts: /alerts); import the "
        f"dashboards of {packaged_contracts() / 'dashboards'} in Grafana, this Prometheus as data source\n"
    )
    return process


def prometheus_config(
    target_port: int, rules: Path | None, *, scrape_interval: str, job: str = "cadmetrics-demo"
) -> str:
    """A Prometheus configuration scraping ``127.0.0.1:target_port`` (with ``rules`` loaded)."""
    lines = [
        "global:",
        f"  scrape_interval: {scrape_interval}",
        f"  evaluation_interval: {scrape_interval}",
    ]
    if rules is not None:
        lines += ["rule_files:", f"  - {rules}"]
    lines += [
        "scrape_configs:",
        f"  - job_name: {job}",
        "    static_configs:",
        f"      - targets: ['127.0.0.1:{target_port}']",
    ]
    return "\n".join(lines) + "\n"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
