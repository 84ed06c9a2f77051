"""The Telemetry of a worker process (a process pool's, a distributed executor's).

A worker reports through prometheus_client's multiprocess mode when the host set
``PROMETHEUS_MULTIPROC_DIR`` (the host's multiprocess registry then gathers every worker's
values); otherwise its metrics are off. It registers on a registry of its own: a forked worker
inherits the host's default registry, where the host's instruments already are, and in
multiprocess mode samples go to the shared directory whatever the registry.
"""

from __future__ import annotations

import os

from cadmetrics.telemetry.facade import Telemetry

_KEPT: list[Telemetry] = []  # one per worker process, shared by everything it builds


def worker_telemetry() -> Telemetry:
    """This process's worker Telemetry, made on first use."""
    if not _KEPT:
        telemetry = Telemetry()
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            try:
                from prometheus_client import CollectorRegistry

                telemetry = Telemetry(backends=[CollectorRegistry()])
            except ImportError:  # prometheus_client missing in the worker: metrics off
                pass
        _KEPT.append(telemetry)
    return _KEPT[0]
