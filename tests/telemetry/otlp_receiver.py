"""A small OTLP/HTTP receiver on loopback: it accepts what a collector would (``POST
/v1/metrics`` and ``POST /v1/traces``, protobuf, optionally gzip or deflate), decodes every
request and keeps it (metrics in ``requests``, traces in ``traces``).

Anything else is answered as a collector would answer it (404, 405, 415, 400) and kept in
``rejected``, so a test sees a misconfigured exporter instead of an empty list.
"""

from __future__ import annotations

import gzip
import importlib
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

TRACES_PATH = "/v1/traces"

PROTOBUF = "application/x-protobuf"
#: protobuf's decoding error, by module name: protobuf ships no type stubs
DecodeError: type[Exception] = importlib.import_module("google.protobuf.message").DecodeError


class OtlpReceiver:
    """``with OtlpReceiver() as receiver:`` serves on ``receiver.endpoint`` until the block ends."""

    def __init__(self, path: str = "/v1/metrics") -> None:
        self.path = path
        self.requests: list[ExportMetricsServiceRequest] = []
        self.traces: list[ExportTraceServiceRequest] = []
        self.encodings: list[str] = []  # the Content-Encoding of each kept request
        self.rejected: list[tuple[int, str]] = []  # (status, reason)
        self._arrived = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.01,), name="otlp-receiver", daemon=True
        )  # a short poll interval: shutdown() waits for the next poll

    @property
    def port(self) -> int:
        port: int = self._server.server_address[1]
        return port

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    @property
    def traces_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}{TRACES_PATH}"

    def __enter__(self) -> OtlpReceiver:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def keep(self, request: ExportMetricsServiceRequest, encoding: str) -> None:
        with self._arrived:
            self.requests.append(request)
            self.encodings.append(encoding)
            self._arrived.notify_all()

    def keep_traces(self, request: ExportTraceServiceRequest) -> None:
        with self._arrived:
            self.traces.append(request)
            self._arrived.notify_all()

    def reject(self, status: int, reason: str) -> None:
        with self._arrived:
            self.rejected.append((status, reason))

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        """Whether ``count`` requests arrived within ``timeout`` seconds."""
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self.requests) >= count, timeout)

    @property
    def latest(self) -> ExportMetricsServiceRequest:
        """The last request: with cumulative temporality, the exporter's whole state."""
        assert self.requests, f"no OTLP request arrived (rejected: {self.rejected})"
        return self.requests[-1]


def _handler(receiver: OtlpReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the exporter's session expects

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path not in (receiver.path, TRACES_PATH):
                return self._fail(404, f"no receiver on {self.path}")
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            if content_type != PROTOBUF:
                return self._fail(415, f"content type {content_type!r}, expected {PROTOBUF}")
            encoding = (self.headers.get("Content-Encoding") or "").strip().lower()
            try:
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                elif encoding not in ("", "identity"):
                    return self._fail(415, f"content encoding {encoding!r}")
                if self.path == TRACES_PATH:
                    traces = ExportTraceServiceRequest()
                    traces.ParseFromString(body)
                else:
                    request = ExportMetricsServiceRequest()
                    request.ParseFromString(body)
            except (OSError, zlib.error, DecodeError) as exc:
                return self._fail(400, f"undecodable payload: {exc}")
            if self.path == TRACES_PATH:
                receiver.keep_traces(traces)
                return self._reply(200, ExportTraceServiceResponse().SerializeToString())
            receiver.keep(request, encoding)
            return self._reply(200, ExportMetricsServiceResponse().SerializeToString())

        def do_GET(self) -> None:
            self._fail(405, "metrics are pushed with POST")

        def _fail(self, status: int, reason: str) -> None:
            receiver.reject(status, reason)
            self._reply(status, reason.encode(), "text/plain")

        def _reply(self, status: int, body: bytes, content_type: str = PROTOBUF) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # quiet: pytest shows failures
            pass

    return Handler
