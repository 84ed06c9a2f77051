"""``ModelLoader``: load model files only after they pass every check, and say so in metrics.

The steps run in this order, and no byte is unpickled for real before the first three pass:
size limit, sha256 allowlist (when given), scan; then the format's loader
(:mod:`cadmetrics.models.loading`) whose ``find_class`` enforces the same policy again
(defence in depth: a scanner bug alone does not make a load unsafe), then interface
validation, then commit. A refused ``reload`` leaves the previous model serving. ``audit``
mode loads whatever it records: never use it on untrusted files.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

from cadmetrics.errors import (
    HashNotAllowed,
    HealthCheckFailed,
    InputError,
    InterfaceInvalid,
    ModelBlocked,
    ModelLoadFailed,
    ModelRefused,
    ModelTooLarge,
    NoSnapshot,
    UnsupportedModelFormat,
)
from cadmetrics.models.interface import Interface
from cadmetrics.models.loading import load_content
from cadmetrics.models.policy import DEFAULT_POLICY, Mode, Policy, parse_mode
from cadmetrics.models.report import ScanReport
from cadmetrics.models.scan import scan
from cadmetrics.models.snapshots import Snapshot, SnapshotStore
from cadmetrics.models.tensors import torch_available
from cadmetrics.telemetry.facade import Telemetry
from cadmetrics.telemetry.health import Check, Status
from cadmetrics.telemetry.logs import component_logger, log_event

_LOG = component_logger("models")

#: Default size limit: larger models must be allowed explicitly.
DEFAULT_MAX_BYTES = 2 * 1024**3

PathLike = str | os.PathLike[str]

#: Formats that hold weights, not an object with methods: no default interface applies.
WEIGHT_FORMATS = frozenset({"torch", "torch-legacy", "torchscript", "numpy", "npz", "safetensors", "onnx"})


class ModelLoader:
    """Loads, validates and keeps the model that serves.

    ``mode`` is checked now: an unknown name raises :class:`~cadmetrics.errors.UnknownScanMode`
    instead of quietly skipping the scan; ``allowlist`` is the default. ``allowed_sha256``
    (full hex digests) restricts loads to known files. ``max_bytes`` bounds the file, and what
    it unpacks to during the scan. ``interface`` is what the model must offer (default: a
    callable ``predict`` for objects such as estimators; nothing for weights: mappings of
    tensors, arrays, ONNX models, TorchScript modules). ``tensors`` says what PyTorch and
    safetensors tensors become: ``"numpy"`` arrays, ``"torch"`` tensors sharing their memory
    (needs torch), or, by default, torch tensors when torch is installed.
    """

    def __init__(
        self,
        mode: str | Mode = Mode.ALLOWLIST,
        *,
        policy: Policy = DEFAULT_POLICY,
        max_bytes: int = DEFAULT_MAX_BYTES,
        allowed_sha256: Iterable[str] | None = None,
        interface: Interface | None = None,
        snapshots_dir: str | os.PathLike[str] | None = None,
        keep: int = 3,
        health_check: Callable[[Any], object] | None = None,
        telemetry: Telemetry | None = None,
        tensors: Literal["numpy", "torch"] | None = None,
    ) -> None:
        self.mode = parse_mode(mode)
        self.policy = policy
        self.max_bytes = max_bytes
        self.allowed_sha256 = None if allowed_sha256 is None else frozenset(h.lower() for h in allowed_sha256)
        self.interface = interface
        if tensors not in (None, "numpy", "torch"):
            raise ValueError(f"tensors must be 'numpy' or 'torch', not {tensors!r}")
        self.as_torch = torch_available() if tensors is None else tensors == "torch"
        tel = telemetry if telemetry is not None else Telemetry()
        self._telemetry = tel
        self._scans = tel.counter("cadmetrics_model_opcode_scans_total")
        self._blocked = tel.counter("cadmetrics_model_opcode_blocked_total")
        self._refusals = tel.counter("cadmetrics_model_load_refusals_total")
        self._invalid = tel.counter("cadmetrics_model_interface_validation_failures_total")
        self._reloads = tel.counter("cadmetrics_model_reloads_total")
        self._duration = tel.histogram("cadmetrics_model_load_duration_seconds")
        self._rollbacks = tel.counter("cadmetrics_model_rollbacks_total")
        self._level_gauge = tel.gauge("cadmetrics_model_rollback_level")
        self._available = tel.gauge("cadmetrics_model_snapshots_available")
        tel.gauge("cadmetrics_model_opcode_mode").set(self.mode.gauge_value)
        self.health_check = health_check
        self.model: Any = None
        self.sha256: str | None = None
        self.report: ScanReport | None = None
        self.level = 0
        self.store = SnapshotStore(snapshots_dir, keep) if snapshots_dir is not None else None
        if self.store is not None:
            self._recover()

    def load(self, path: PathLike) -> Any:
        """Check and load the model at ``path``, make it the one that serves and keep it as
        the newest snapshot; then run the host's health check, rolling back if it fails."""
        with self._telemetry.span("cadmetrics.models.load", mode=self.mode.value) as span:
            started = time.perf_counter()
            source = Path(path)
            try:
                data = self._read_within_limit(source)
                model, digest, report = self._admit(data, str(source))
            except ModelRefused as refusal:
                self._refusals.inc(reason=refusal.reason)
                span.set(result="refused", reason=refusal.reason)
                raise
            finally:
                self._duration.observe(time.perf_counter() - started, mode=self.mode.value)
            span.set(result="success", model_format=report.format)
            previous = (self.model, self.sha256, self.report, self.level)
            if self.store is not None:
                self.store.commit(data, str(source), report.to_dict())
            self._serve(model, digest, report, level=0)
            self._check_health(model, digest, previous)
            return model

    def reload(self, path: PathLike) -> Any:
        """Load ``path`` in place of the serving model. On any failure the previous model keeps
        serving and the failure is raised."""
        with self._telemetry.span("cadmetrics.models.reload") as span:
            result = "error"
            try:
                model = self.load(path)
                result = "success"
            except HealthCheckFailed:
                result = "health_check_failed"
                raise
            except ModelRefused:
                result = "refused"
                raise
            finally:
                self._reloads.inc(result=result)
                span.set(result=result)
            return model

    def rollback(self, levels: int = 1) -> Any:
        """Serve the snapshot ``levels`` back from the newest (1 = the one before), or the
        next older one that still passes every check."""
        if self.store is None:
            raise NoSnapshot("rollback needs snapshots_dir")
        snapshots = self.store.snapshots()
        candidates = [snapshot for snapshot in snapshots if snapshot.level >= levels]
        if levels < 1 or not candidates:
            raise NoSnapshot(f"no intact snapshot {levels} back: {len(snapshots)} available")
        with self._telemetry.span("cadmetrics.models.rollback", reason="manual", levels=levels):
            model = self._serve_first_valid(candidates)
            if model is None:
                raise NoSnapshot(f"no snapshot from {levels} back passes the checks")
            self._rollbacks.inc(reason="manual")
            _rolled_back("manual", self.level)
            return model

    def health(self) -> list[Check]:
        """What serves: fail when no model does, warn when an older snapshot does (after a
        rollback); and the snapshots there are to roll back to (warn when none is)."""
        if self.model is None:
            serving = Check("models", "serving", Status.FAIL, "no model serves")
        elif self.level > 0:
            serving = Check(
                "models",
                "serving",
                Status.WARN,
                f"an older model serves: snapshot level {self.level}, after a rollback",
                observed_value=self.level,
            )
        else:
            serving = Check("models", "serving", Status.PASS, observed_value=0)
        checks = [serving]
        if self.store is not None:
            count = len(self.store.snapshots())
            status = Status.PASS if count else Status.WARN
            output = "" if count else "no snapshot left to roll back to"
            checks.append(Check("models", "snapshots", status, output, observed_value=count))
        return checks

    # -- snapshots ------------------------------------------------------------------------

    def _recover(self) -> None:
        """Restore the last good model from the snapshots left by an earlier process.

        Serving anything but the newest committed model is a rollback, counted once: as
        ``corrupt_snapshot`` when a newer snapshot is damaged on disk, as
        ``startup_recovery`` when the newer ones are intact but no longer pass the checks.
        Damage to older snapshots or to the manifest changes nothing that serves: it is in
        ``store.problems`` and in the snapshots-available gauge, not a rollback."""
        assert self.store is not None
        snapshots = self.store.snapshots()
        damaged = [problem.level for problem in self.store.problems if problem.level is not None]
        if self._serve_first_valid(snapshots) is not None and self.level > 0:
            newer_damaged = any(level < self.level for level in damaged)
            reason = "corrupt_snapshot" if newer_damaged else "startup_recovery"
            self._rollbacks.inc(reason=reason)
            _rolled_back(reason, self.level)
        self._available.set(len(snapshots))

    def _serve_first_valid(self, snapshots: list[Snapshot]) -> Any:
        """The first of ``snapshots`` that passes every check again, now serving."""
        for snapshot in snapshots:
            try:
                model, digest, report = self._admit(snapshot.read(), str(snapshot.path))
            except (ModelRefused, ValueError, OSError):
                continue
            self._serve(model, digest, report, snapshot.level)
            return model
        return None

    def _serve(self, model: Any, digest: str, report: ScanReport, level: int) -> None:
        self.model, self.sha256, self.report, self.level = model, digest, report, level
        self._level_gauge.set(level)
        if self.store is not None:
            self._available.set(len(self.store.snapshots()))

    def _check_health(
        self, model: Any, digest: str, previous: tuple[Any, str | None, ScanReport | None, int]
    ) -> None:
        if self.health_check is None:
            return
        try:  # a check fails by raising, or by returning a false value (None means no verdict)
            result = self.health_check(model)
            healthy = result is None or bool(result)
            problem = f"returned {result!r}"
        except Exception as exc:
            healthy, problem = False, f"raised {type(exc).__name__}: {exc}"
        if healthy:
            return
        # back to exactly what served before this load (after a manual rollback too), and
        # out of the store, so that a restart does not bring the failed model back
        if self.store is not None:
            self.store.discard(digest)
        self.model, self.sha256, self.report, self.level = previous
        self._level_gauge.set(self.level)
        if self.store is not None:
            self._available.set(len(self.store.snapshots()))
        if previous[0] is not None:
            self._rollbacks.inc(reason="health_check_failed")
            _rolled_back("health_check_failed", self.level)
        raise HealthCheckFailed(f"the health check {problem}; serving snapshot level {self.level}")

    # -- the steps ------------------------------------------------------------------------

    def _admit(self, data: bytes, source: str) -> tuple[Any, str, ScanReport]:
        """Digest, scan, restricted load, interface: everything after the size limit."""
        digest = hashlib.sha256(data).hexdigest()
        if self.allowed_sha256 is not None and digest not in self.allowed_sha256:
            raise HashNotAllowed(f"{source}: sha256 {digest} is not on the allowed list")
        report = self._scan(data, source)
        verdict = "allowed"
        try:
            model = self._load(data, source, report)
        except ModelBlocked:  # the second check refused what the first allowed
            verdict = "blocked"
            raise
        finally:
            self._scans.inc(mode=self.mode.value, result=verdict)
        try:
            self._interface_for(report).validate(model)
        except InterfaceInvalid as invalid:
            self._invalid.inc(reason=invalid.failure)
            raise InterfaceInvalid(f"{source}: {invalid}", invalid.failure) from invalid
        return model, digest, report

    def _read_within_limit(self, path: Path) -> bytes:
        try:
            size = path.stat().st_size
            if size > self.max_bytes:
                raise ModelTooLarge(f"{path}: {size} bytes is over the limit of {self.max_bytes}")
            with path.open("rb") as file:
                data = file.read(self.max_bytes + 1)
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
        if len(data) > self.max_bytes:  # the file grew since stat
            raise ModelTooLarge(f"{path}: over the limit of {self.max_bytes} bytes")
        return data

    def _scan(self, data: bytes, path: str) -> ScanReport:
        """The scan; a verdict of allowed is counted once the restricted unpickler agrees."""
        blocking = self.mode is not Mode.AUDIT
        with self._telemetry.span("cadmetrics.models.scan", mode=self.mode.value) as span:
            try:
                report = scan(data, self.mode, self.policy, name=str(path), max_unpacked_bytes=self.max_bytes)
            except UnsupportedModelFormat as exc:
                self._scans.inc(mode=self.mode.value, result="error")
                if blocking:
                    self._blocked.inc(reason="unknown_format", mode=self.mode.value)
                span.set(result="error")
                raise ModelBlocked(f"{path}: {exc}") from exc
            verdict = "blocked" if report.blocked else "allowed"
            span.set(result=verdict, model_format=report.format, members=len(report.members))
        if report.blocked:
            self._scans.inc(mode=self.mode.value, result="blocked")
            for reason in report.block_reasons:
                self._blocked.inc(reason=reason, mode=self.mode.value)
            log_event(
                _LOG,
                logging.WARNING,
                "model_blocked",
                f"{path}: model blocked: {', '.join(report.block_reasons)}",
                source=str(path),
                reasons=list(report.block_reasons),
                mode=self.mode.value,
                model_format=report.format,
                to_allow=list(report.to_allow),
            )
            trusted = f"Policy().extend(allow={list(report.to_allow)!r})"
            advice = f"; if you trust this file, admit its classes with {trusted}" if report.to_allow else ""
            raise ModelBlocked(f"{path}: blocked: " + ", ".join(report.block_reasons) + advice, report)
        return report

    def _load(self, data: bytes, path: str, report: ScanReport) -> Any:
        try:
            return load_content(
                data, report.format, self.mode, self.policy, as_torch=self.as_torch, max_bytes=self.max_bytes
            )
        except ModelBlocked as blocked:
            if self.mode is not Mode.AUDIT:
                self._blocked.inc(reason=blocked.block_reason, mode=self.mode.value)
            raise ModelBlocked(f"{path}: {blocked}", report, blocked.block_reason) from blocked
        except ModelLoadFailed as failed:
            raise ModelLoadFailed(f"{path}: {failed}") from failed
        except Exception as exc:
            raise ModelLoadFailed(
                f"{path}: cannot load the {report.format} file: {type(exc).__name__}: {exc}"
            ) from exc

    def _interface_for(self, report: ScanReport) -> Interface:
        """The declared interface, or the default for the file's format: weights (PyTorch
        files, arrays, safetensors, ONNX, TorchScript) need none; pickled objects (estimators)
        a ``predict``."""
        if self.interface is not None:
            return self.interface
        return Interface(methods=()) if report.format in WEIGHT_FORMATS else Interface()


def _rolled_back(reason: str, level: int) -> None:
    log_event(
        _LOG,
        logging.WARNING,
        "model_rollback",
        f"model rolled back ({reason}): snapshot level {level} serves",
        reason=reason,
        level=level,
    )
