"""STEP and IGES files are read by OpenCASCADE in a process of their own.

OpenCASCADE's STEP transfer dereferences what a file says without checking it: a file whose
entity references point at the wrong kind of entity (a few changed bytes are enough) crashes
the process with a segmentation fault, and a pathological one can run for very long. A host
that extracts features from uploaded files must survive both, so the reading happens in one
long-lived worker process per host process, started when the first STEP or IGES file arrives:
a crash there becomes a ``malformed`` :class:`~cadmetrics.errors.FeatureInputError` (and the
next file gets a fresh worker), a file that takes longer than its time bound is stopped and
refused as ``too_large``. The worker's output goes nowhere, so OpenCASCADE's messages never
reach the host's.

The worker answers with plain JSON and raw little-endian arrays (never pickle: its input is
untrusted, so what it sends back is treated as data only). One request at a time: OpenCASCADE's
readers are not thread-safe, and they hold the GIL, so threads would gain nothing.

Run as ``python -m cadmetrics.features.brep_process``: the worker's side of the protocol.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import importlib.util
import json
import os
import signal
import struct
import subprocess
import sys
import threading
from typing import IO, Any, Final

import numpy as np

from cadmetrics.errors import FeatureError, FeatureInputError, MissingDependency
from cadmetrics.features.brep import BRepSummary, MassProperties, summarize
from cadmetrics.features.brep_reading import read_brep
from cadmetrics.features.mesh import Mesh

__all__ = ["BASE_SECONDS", "SECONDS_PER_MEGABYTE", "BRepProcess", "summarize_in_process"]

#: A file may take this long, plus :data:`SECONDS_PER_MEGABYTE` for each megabyte it has,
#: before its reading is stopped: ten times what a 7 MB part of 2,700 faces takes to read and
#: tessellate on one core. A host may change either; they are read at each request.
BASE_SECONDS = 120.0
SECONDS_PER_MEGABYTE = 30.0

_LENGTHS = struct.Struct("<QQ")  # the lengths of a message's JSON header and of its payload
_PR_SET_PDEATHSIG = 1  # prctl option: the signal the process gets when its parent dies


class BRepProcess:
    """The worker process that reads STEP and IGES files, started when first needed and
    started again after it crashed."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def summarize(
        self, data: bytes, *, source: str, format: str, measures: frozenset[str], timeout: float | None = None
    ) -> BRepSummary:
        """The summary of the part in ``data`` with ``measures`` (see
        :func:`cadmetrics.features.brep.summarize`), read in the worker process.

        Raises what :func:`~cadmetrics.features.brep.read_brep` raises, and
        :class:`FeatureInputError` when OpenCASCADE crashes on the file (``malformed``) or
        takes longer than ``timeout`` seconds (default: :data:`BASE_SECONDS` and
        :data:`SECONDS_PER_MEGABYTE`; ``too_large``).
        """
        if not opencascade_installed():
            raise MissingDependency(
                f"{source}: reading {format.upper()} parts needs OpenCASCADE: pip install cadmetrics[step]",
                format=format,
            )
        if timeout is None:
            timeout = BASE_SECONDS + SECONDS_PER_MEGABYTE * len(data) / 1e6
        request = {"source": source, "format": format, "measures": sorted(measures)}
        with self._lock:
            process = self._started()
            reply = _exchange(process, request, data, timeout)
            if reply is None:
                code = process.poll()  # None: still running, past its time
                self._stop()
                if code is None:
                    raise FeatureInputError(
                        f"{source}: reading it took longer than {timeout:.0f} s, the bound for a file "
                        f"of {len(data)} bytes; it was stopped",
                        reason="too_large",
                        format=format,
                    )
                how = f"signal {-code}" if code < 0 else f"exit status {code}"
                raise FeatureInputError(
                    f"{source}: OpenCASCADE crashed reading it ({how}): the file is malformed",
                    reason="malformed",
                    format=format,
                )
        header, payload = reply
        return _answer(header, payload, source=source, format=format)

    def close(self) -> None:
        """Stop the worker (a later request starts another)."""
        with self._lock:
            self._stop()

    def _started(self) -> subprocess.Popen[bytes]:
        if self._process is None or self._process.poll() is not None:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "cadmetrics.features.brep_process"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                bufsize=0,
            )
        return self._process

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        process.wait()
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()


def opencascade_installed() -> bool:
    """Whether the ``step`` extra's OpenCASCADE bindings can be imported."""
    return importlib.util.find_spec("OCP") is not None


_SHARED: Final = BRepProcess()
atexit.register(_SHARED.close)


def summarize_in_process(data: bytes, *, source: str, format: str, measures: frozenset[str]) -> BRepSummary:
    """:meth:`BRepProcess.summarize` on this process's shared worker."""
    return _SHARED.summarize(data, source=source, format=format, measures=measures)


# -- the protocol -------------------------------------------------------------------------------


def _write(stream: IO[bytes], header: dict[str, Any], payload: bytes) -> None:
    encoded = json.dumps(header).encode("utf-8")
    stream.write(_LENGTHS.pack(len(encoded), len(payload)) + encoded)
    stream.write(payload)
    stream.flush()


def _read(stream: IO[bytes]) -> tuple[dict[str, Any], bytes] | None:
    """One message, or None at the end of the stream (or a cut message)."""
    lengths = _read_exactly(stream, _LENGTHS.size)
    if lengths is None:
        return None
    header_length, payload_length = _LENGTHS.unpack(lengths)
    header = _read_exactly(stream, header_length)
    payload = _read_exactly(stream, payload_length)
    if header is None or payload is None:
        return None
    decoded: dict[str, Any] = json.loads(header)
    return decoded, payload


def _read_exactly(stream: IO[bytes], size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = stream.read(left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _exchange(
    process: subprocess.Popen[bytes], request: dict[str, Any], data: bytes, timeout: float
) -> tuple[dict[str, Any], bytes] | None:
    """Send one request and wait for its reply; None when the worker died or ran out of time
    (then it is still running: the caller stops it)."""
    stdin, stdout = process.stdin, process.stdout
    if stdin is None or stdout is None:  # never: both are pipes
        raise FeatureError("the STEP reader process has no pipes")
    try:
        _write(stdin, request, data)
    except OSError:  # the worker is gone
        process.wait()
        return None
    replies: list[tuple[dict[str, Any], bytes] | None] = []
    reader = threading.Thread(target=lambda: replies.append(_read(stdout)), daemon=True)
    reader.start()
    reader.join(timeout)
    if reader.is_alive() or not replies or replies[0] is None:
        if not reader.is_alive():
            process.wait()
        return None
    return replies[0]


def _answer(header: dict[str, Any], payload: bytes, *, source: str, format: str) -> BRepSummary:
    """The summary a reply holds, or the error it reports, raised here."""
    status = header.get("status")
    if status == "refused":
        raise FeatureInputError(header["message"], reason=header["reason"], format=format)
    if status == "missing":
        raise MissingDependency(header["message"], format=format)
    if status != "ok":
        raise FeatureError(f"{source}: reading it failed: {header.get('message')}", format=format)
    found = header["summary"]
    mesh = None
    if "mesh" in header:
        vertices, faces = header["mesh"]
        points = np.frombuffer(payload, dtype="<f8", count=3 * vertices).reshape(-1, 3)
        triangles = np.frombuffer(payload, dtype="<i8", offset=24 * vertices, count=3 * faces).reshape(-1, 3)
        mesh = Mesh.from_arrays(points, triangles, source=source, format=format)
    mass = found["mass"]
    return BRepSummary(
        source,
        format,
        found["unit"],
        found["topology"],
        tuple(found["extents"]),
        mass=None
        if mass is None
        else MassProperties(
            mass["volume"],
            mass["area"],
            tuple(mass["centre"]),
            tuple(mass["principal_moments"]),
            tuple(mass["gyration_radii"]),
        ),
        surface_types=found["surface_types"],
        surface_type_areas=found["surface_type_areas"],
        edge_convexity=found["edge_convexity"],
        mesh=mesh,
    )


# -- the worker's side --------------------------------------------------------------------------


def _serve(requests: IO[bytes], replies: IO[bytes]) -> None:
    """Answer requests until the other side closes the stream."""
    while True:
        message = _read(requests)
        if message is None:
            return
        header, data = message
        source, format = header["source"], header["format"]
        try:
            summary = summarize(read_brep(data, source=source, format=format), frozenset(header["measures"]))
        except MissingDependency as exc:
            _write(replies, {"status": "missing", "message": str(exc)}, b"")
            continue
        except FeatureInputError as exc:
            _write(replies, {"status": "refused", "reason": exc.reason, "message": str(exc)}, b"")
            continue
        except Exception as exc:  # reported to the host as a failed extraction, never fatal here
            _write(replies, {"status": "failed", "message": f"{type(exc).__name__}: {exc}"}, b"")
            continue
        _write(replies, *_encoded(summary))


def _encoded(summary: BRepSummary) -> tuple[dict[str, Any], bytes]:
    mass = summary.mass
    found = {
        "unit": summary.unit,
        "topology": summary.topology,
        "extents": list(summary.extents),
        "mass": None
        if mass is None
        else {
            "volume": mass.volume,
            "area": mass.area,
            "centre": list(mass.centre),
            "principal_moments": list(mass.principal_moments),
            "gyration_radii": list(mass.gyration_radii),
        },
        "surface_types": summary.surface_types,
        "surface_type_areas": summary.surface_type_areas,
        "edge_convexity": summary.edge_convexity,
    }
    header: dict[str, Any] = {"status": "ok", "summary": found}
    if summary.mesh is None:
        return header, b""
    vertices, faces = summary.mesh.vertices, summary.mesh.faces
    header["mesh"] = [len(vertices), len(faces)]
    return header, vertices.astype("<f8").tobytes() + faces.astype("<i8").tobytes()


def main() -> None:
    """The worker: requests on standard input, replies on a copy of standard output, and
    standard output itself (where OpenCASCADE prints) sent nowhere."""
    if sys.platform.startswith("linux"):  # die with the host: a file can keep OpenCASCADE busy
        with contextlib.suppress(Exception):  # for hours after its host was killed
            ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    replies = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    _serve(sys.stdin.buffer, replies)


if __name__ == "__main__":
    main()
