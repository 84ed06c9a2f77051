"""Feature extraction against trimesh, cache latencies, on real and generated meshes.

Side by side in one run, on the same bytes:

- parse + v1/v2 features: cadmetrics (``read_mesh`` then the v2 layout) against trimesh
  (``trimesh.load`` then the same properties: area, volume, inertia, convex-hull volume,
  Euler number, watertightness), on generated binary STLs of 10k to 1M faces and on the
  largest real parts of ``../shared/cad-samples``;
- v4 (everything: D2 and surface patches too), time per face;
- L1 hit latency (``extractor.cached(sha256)``: a lookup by content hash, metrics included);
- Redis L2 hit latency, against a redis-server started for the run (when one is installed).

Targets: parse + v2 at least 2x faster than trimesh from 100k faces; L1 hit under 5 µs; v4 on
100k faces under 0.5 s. Run: ``python benchmarks/bench_features.py [--quick]``.
"""

from __future__ import annotations

import argparse
import io
import math
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import trimesh

from cadmetrics import Telemetry, load_contract
from cadmetrics.features.cache import FeatureCache
from cadmetrics.features.extractor import FeatureExtractor
from cadmetrics.features.formats import read_mesh
from cadmetrics.features.layout import V1, V2, V4, FeatureLayout
from cadmetrics.features.mesh import Mesh
from cadmetrics.features.vector import FeatureConfig, mesh_features

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "cad-samples"


def torus_stl(faces: int) -> bytes:
    """A binary STL torus of about ``faces`` triangles."""
    sides = max(8, int(math.sqrt(faces / 4)))
    rings = max(8, -(-faces // (2 * sides)))  # at least ``faces`` triangles
    u = 2 * np.pi * np.arange(rings) / rings
    v = 2 * np.pi * np.arange(sides) / sides
    uu, vv = np.meshgrid(u, v, indexing="ij")
    points = np.stack(
        [(3 + np.cos(vv)) * np.cos(uu), (3 + np.cos(vv)) * np.sin(uu), np.sin(vv)], axis=-1
    ).reshape(-1, 3)
    i, j = np.meshgrid(np.arange(rings), np.arange(sides), indexing="ij")
    a, b = i * sides + j, ((i + 1) % rings) * sides + j
    c, d = ((i + 1) % rings) * sides + (j + 1) % sides, i * sides + (j + 1) % sides
    triangles = np.concatenate(
        [np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)]
    )
    record = np.zeros(
        len(triangles), dtype=[("normal", "<f4", 3), ("corners", "<f4", (3, 3)), ("attr", "<u2")]
    )
    record["corners"] = points[triangles]
    return b"\0" * 80 + struct.pack("<I", len(triangles)) + record.tobytes()


def ours(data: bytes, layout: FeatureLayout) -> None:
    mesh_features(read_mesh(data, source="bench"), layout, FeatureConfig())


def theirs(data: bytes) -> None:
    mesh: Any = trimesh.load(io.BytesIO(data), file_type=_kind(data), force="mesh", skip_materials=True)
    _ = (mesh.area, mesh.volume, mesh.moment_inertia, mesh.principal_inertia_components)
    _ = (mesh.convex_hull.volume, mesh.euler_number, mesh.is_watertight, mesh.bounding_box.extents)


def _kind(data: bytes) -> str:
    if data[:3] == b"ply":
        return "ply"
    if data[:1] in (b"v", b"#", b"o", b"g"):
        return "obj"
    return "stl"


def v4_seconds(mesh: Mesh, repeat: int) -> float:
    def extract() -> None:
        mesh_features(mesh, V4, FeatureConfig())

    return best_seconds(extract, repeat)


def lookup_seconds(extractor: FeatureExtractor, sha256: str, number: int, repeat: int) -> float:
    """Best seconds per ``extractor.cached(sha256)``."""
    return min(timeit.repeat(lambda: extractor.cached(sha256), number=number, repeat=repeat)) / number


def best_seconds(call: Callable[[], None], repeat: int) -> float:
    return min(timeit.repeat(call, number=1, repeat=repeat))


def compare(name: str, data: bytes, faces: int, repeat: int) -> None:
    mine = {"v1": best_seconds(lambda: ours(data, V1), repeat)}
    mine["v2"] = best_seconds(lambda: ours(data, V2), repeat)
    try:
        other = best_seconds(lambda: theirs(data), repeat)
    except Exception as exc:  # trimesh cannot read every file (an OBJ's textures need Pillow)
        print(f"{name:<34} {faces:>9} faces  parse+v2 {mine['v2'] * 1e3:8.1f} ms  trimesh failed: {exc!r}")
        return
    ratio = other / mine["v2"]
    verdict = ""
    if faces >= 100_000:
        verdict = f"  (target >= 2x: {'met' if ratio >= 2 else 'MISSED'})"
    print(
        f"{name:<34} {faces:>9} faces  parse+v1 {mine['v1'] * 1e3:8.1f} ms  "
        f"parse+v2 {mine['v2'] * 1e3:8.1f} ms  trimesh {other * 1e3:8.1f} ms  {ratio:5.2f}x{verdict}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small meshes, few repeats: a smoke run")
    args = parser.parse_args()
    sizes, repeat = ([10_000], 1) if args.quick else ([10_000, 100_000, 1_000_000], 3)

    print("== parse + features, cadmetrics vs trimesh (best of runs)")
    for faces in sizes:
        data = torus_stl(faces)
        compare("generated torus, binary STL", data, len(data) // 50, repeat)
    if SAMPLES.is_dir():
        parts = sorted(
            (p for kind in ("stl", "ply", "obj") for p in (SAMPLES / kind).iterdir()),
            key=lambda p: p.stat().st_size,
            reverse=True,
        )
        for path in parts[: 2 if args.quick else 6]:
            data = path.read_bytes()
            faces = len(read_mesh(data, source=str(path)).faces)
            compare(f"{path.parent.name}/{path.name}", data, faces, repeat)
    else:
        print(f"(no real parts: {SAMPLES} is absent)")

    print("\n== v4, everything (D2 and surface patches included)")
    for faces in sizes:
        mesh = read_mesh(torus_stl(faces), source="bench")
        seconds = v4_seconds(mesh, repeat)
        verdict = ""
        if 50_000 <= len(mesh.faces) <= 200_000:
            verdict = f"  (target < 0.5 s on ~100k faces: {'met' if seconds < 0.5 else 'MISSED'})"
        print(
            f"torus {len(mesh.faces):>9} faces  {seconds * 1e3:8.1f} ms  "
            f"{seconds / len(mesh.faces) * 1e9:6.0f} ns/face{verdict}"
        )

    print("\n== cache hit latency")
    contract = load_contract()
    for label, telemetry in (("no metrics", Telemetry()), ("prometheus", _prometheus(contract))):
        extractor = FeatureExtractor("v4", telemetry=telemetry)
        vector = extractor.extract(read_mesh(torus_stl(2_000), source="bench"))
        number = 20_000 if args.quick else 200_000
        per_call = lookup_seconds(extractor, vector.sha256, number, repeat=5)
        verdict = "met" if per_call < 5e-6 else "MISSED"
        print(f"L1 hit ({label:<10})  {per_call * 1e6:6.2f} µs  (target < 5 µs: {verdict})")
    _redis_latency(args.quick)


def _prometheus(contract: Any) -> Telemetry:
    from prometheus_client import CollectorRegistry

    return Telemetry(contract, [CollectorRegistry()])


def _redis_latency(quick: bool) -> None:
    binary = shutil.which("redis-server")
    if binary is None:
        print("L2 hit (Redis): redis-server is not installed; skipped")
        return
    from cadmetrics.features.redis_cache import RedisCache

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory() as directory:
        server = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", directory],
            stdout=subprocess.DEVNULL,
        )
        try:
            level = RedisCache(f"redis://127.0.0.1:{port}/0", timeout_seconds=1.0)
            for _ in range(100):
                try:
                    level.client.ping()
                    break
                except Exception:
                    time.sleep(0.05)
            writer = FeatureExtractor("v4", cache=FeatureCache(l1=None, l2=level))
            vector = writer.extract(read_mesh(torus_stl(2_000), source="bench"))
            reader = FeatureExtractor("v4", cache=FeatureCache(l1=None, l2=level))
            number = 500 if quick else 5_000
            per_call = lookup_seconds(reader, vector.sha256, number, repeat=3)
            print(f"L2 hit (Redis, localhost TCP)  {per_call * 1e6:6.1f} µs")
        finally:
            server.kill()
            server.wait()


if __name__ == "__main__":
    main()
