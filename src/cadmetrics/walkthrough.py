"""A walk through the library on real CAD files, as a host would use it: the body of
``cadmetrics demo``, and the workload that the dashboards and alert rules are proven against.

Each step uses the public API with one :class:`~cadmetrics.Telemetry` and records a line of
the summary. Some steps show a safeguard at work and so produce the conditions an operator is
alerted to: a malicious model refused, a model without the declared interface, a shared cache
that is down, parts that drift from the baseline, a label value the contract does not admit.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from cadmetrics.drift import Baseline, DriftMonitor
from cadmetrics.errors import CadMetricsError, FeatureError, ModelRefused
from cadmetrics.features.cache import FeatureCache, MemoryCache
from cadmetrics.features.extractor import FeatureExtractor, FeatureVector
from cadmetrics.health import health
from cadmetrics.models.loader import ModelLoader
from cadmetrics.models.policy import Policy
from cadmetrics.telemetry.facade import Telemetry
from cadmetrics.telemetry.health import Check
from cadmetrics.vectors import VectorStore

#: Where the shared samples live beside a checkout of the repository.
SAMPLES_BESIDE_CHECKOUT = Path(__file__).resolve().parents[3] / "shared" / "cad-samples"
MESH_SUFFIXES = (".stl", ".obj", ".ply")
_MAX_SAMPLES = 12
_MAX_SAMPLE_BYTES = 2 << 20


class LinearModel:
    """A stand-in for a trained model: what the loader must accept (it has ``predict``)."""

    def __init__(self, weights: np.ndarray) -> None:
        self.weights = weights

    def predict(self, features: Any) -> Any:
        return np.asarray(features, dtype=float) @ self.weights


#: The allowlist (the loader's default mode) admits the demo's model class by its exact name.
TRUSTED = Policy().extend(allow=[f"{LinearModel.__module__}.{LinearModel.__qualname__}"])


class _RunsCode:
    """A pickle that would run a shell command when loaded; the loader never loads it."""

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, ("echo this model took over the process",))


@attrs.define
class Summary:
    """What the walk did, a line per step, and the numbers a reader checks."""

    lines: list[tuple[str, str]] = attrs.field(factory=list)
    #: what went wrong that should not have: extractions of real parts that failed
    problems: list[str] = attrs.field(factory=list)

    def add(self, step: str, result: str) -> None:
        self.lines.append((step, result))

    def render(self) -> str:
        width = max((len(step) for step, _ in self.lines), default=0)
        return "\n".join(f"  {step:<{width}}  {result}" for step, result in self.lines)


def sample_files(samples: Path | None, workdir: Path) -> tuple[list[Path], str]:
    """Real mesh files to extract (from ``samples``, or the shared samples beside a checkout),
    or, without any, primitives written as binary STL; and a phrase saying which."""
    folder = samples if samples is not None else SAMPLES_BESIDE_CHECKOUT
    found = sorted(
        path
        for path in folder.rglob("*")
        if path.suffix.lower() in MESH_SUFFIXES
        and path.parent.name != "broken"
        and path.is_file()
        and path.stat().st_size <= _MAX_SAMPLE_BYTES
    ) if folder.is_dir() else []  # fmt: skip
    if found:
        return found[:_MAX_SAMPLES], f"{min(len(found), _MAX_SAMPLES)} real parts from {folder}"
    generated = []
    for index, (a, b, c) in enumerate([(1, 2, 3), (2, 2, 2), (1, 1, 5), (3, 1, 0.5)]):
        path = workdir / f"box-{index}.stl"
        path.write_bytes(_box_stl(a, b, c))
        generated.append(path)
    return generated, f"{len(generated)} generated boxes (no samples at {folder})"


def walk(telemetry: Telemetry, workdir: Path, samples: Path | None = None) -> Summary:
    """Run every step once; files go to ``workdir``."""
    summary = Summary()
    files, origin = sample_files(samples, workdir)
    summary.add("samples", origin)
    checks: list[Check] = []
    vectors = _features(telemetry, files, summary, checks)
    _models(telemetry, workdir, summary, checks)
    _vectors(telemetry, workdir, files, vectors, summary, checks=checks)
    _drift(telemetry, vectors, summary, checks)
    _overflow(telemetry, summary)
    report = health(checks, telemetry=telemetry)
    summary.add(
        "health",
        f"{report.status}: "
        + ", ".join(f"{component} {status}" for component, status in report.component_status().items())
        + "".join(f"; {check.key}: {check.output}" for check in report.checks if check.status != "pass"),
    )
    return summary


def _features(
    telemetry: Telemetry, files: list[Path], summary: Summary, checks: list[Check]
) -> list[FeatureVector]:
    cache = FeatureCache(l1=MemoryCache(max_entries=256), l2=_unreachable_redis())
    v1 = FeatureExtractor("v1", cache=cache, telemetry=telemetry)
    v4 = FeatureExtractor("v4", cache=cache, telemetry=telemetry)
    first = v4.extract_many(files, progress=False)
    vectors = [result for result in first if isinstance(result, FeatureVector)]
    again = [v4.extract(Path(vector.source)) for vector in vectors]  # the second time from the cache
    for round_number in range(6):  # a request stream with reuse, for the cache tuning
        for vector in vectors[: 2 + 2 * round_number]:
            v4.extract(Path(vector.source))
    v1.extract_many(files, progress=False)
    failures = len(first) - len(vectors)
    summary.problems += [
        f"extracting {path}: {result} [{result.reason}]"
        for path, result in zip(files, first, strict=True)
        if isinstance(result, FeatureError)
    ]
    try:
        v4.extract(_box_stl(1, 2, 3)[:300])  # a binary STL cut off after its fourth triangle
    except FeatureError as exc:
        summary.add("a cut-off STL", f"refused: {exc.reason}")
    open_box = v4.extract(_box_stl(1, 2, 3, lid=False))
    summary.add("a box without its lid", f"read, degraded: {', '.join(open_box.quality)}")
    recommendation = v4.cache_tuning(target_hit_ratio=0.5)
    checks += v4.health()
    summary.add(
        "features v1 and v4",
        f"{len(vectors)} parts, {failures} failed; {sum(vector.cached for vector in again)} of "
        f"{len(again)} repeats from the cache"
        + ("; L2 (Redis) unreachable, counted and skipped" if cache.l2 is not None else ""),
    )
    summary.add(
        "cache tuning",
        f"{recommendation.capacity_entries} L1 entries reach "
        f"a {recommendation.target_hit_ratio:.0%} hit ratio"
        if recommendation.enough_data
        else f"not enough requests yet ({recommendation.reason})",
    )
    return vectors


def _unreachable_redis() -> Any:
    """A shared cache level on a port nothing listens on, when the redis extra is installed:
    its failures are counted and skipped, never raised."""
    try:
        from cadmetrics.features.redis_cache import RedisCache

        return RedisCache("redis://127.0.0.1:9/0")
    except CadMetricsError:
        return None


def _models(telemetry: Telemetry, workdir: Path, summary: Summary, checks: list[Check]) -> None:
    good = workdir / "model-1.pkl"
    better = workdir / "model-2.pkl"
    hostile = workdir / "model-hostile.pkl"
    no_interface = workdir / "model-no-predict.pkl"
    good.write_bytes(pickle.dumps(LinearModel(np.ones(4))))
    better.write_bytes(pickle.dumps(LinearModel(np.arange(4.0))))
    hostile.write_bytes(pickle.dumps(_RunsCode()))
    no_interface.write_bytes(pickle.dumps({"weights": [1.0, 2.0]}))
    snapshots = workdir / "snapshots"
    shutil.rmtree(snapshots, ignore_errors=True)
    loader = ModelLoader(policy=TRUSTED, snapshots_dir=snapshots, telemetry=telemetry)
    loader.load(good)
    loader.reload(better)
    outcomes = []
    for path in (hostile, no_interface):
        try:
            loader.reload(path)
        except ModelRefused as exc:
            outcomes.append(f"{path.name} refused ({exc.reason})")
    loader.rollback(1)
    serving = loader.model
    checks += loader.health()
    summary.add("models", "; ".join(outcomes))
    summary.add(
        "reload and roll back",
        f"model-2 loaded, rolled back: model-1 serves (predict([1,1,1,1]) = {serving.predict(np.ones(4)):g})",
    )


def _vectors(
    telemetry: Telemetry,
    workdir: Path,
    files: list[Path],
    vectors: list[FeatureVector],
    summary: Summary,
    *,
    checks: list[Check],
) -> None:
    path = workdir / "vectors"
    shutil.rmtree(path, ignore_errors=True)
    by_hash = {hashlib.sha256(file.read_bytes()).hexdigest(): file for file in files}
    with VectorStore.open(path, telemetry=telemetry) as store:
        for vector in vectors:
            store.add_features(vector, metadata={"file": Path(vector.source).name})
        if vectors:
            hits = store.search(vectors[0].values, k=3)
            summary.add(
                "store and search",
                f"{len(store)} v4 vectors; nearest to {Path(vectors[0].source).name}: "
                + ", ".join(f"{_file_of(store, hit.id)} ({hit.score:.3f})" for hit in hits),
            )
        down = store.migrate(store.plan_migration("v3"), progress=False)
        up = store.migrate(
            store.plan_migration("v4"),
            extractor=FeatureExtractor("v4", telemetry=telemetry),
            content=lambda sha256: by_hash[sha256].read_bytes() if sha256 in by_hash else None,
            progress=False,
        )
        summary.add(
            "migrate v4 -> v3 -> v4",
            f"{down.records} projected down; "
            f"{up.methods.get('re_extracted', 0)} re-extracted up from their files",
        )
        checks += store.health()


def _file_of(store: VectorStore, id: str) -> str:
    record = store.get(id)
    metadata = record.metadata if record is not None else None
    return str(metadata.get("file", id)) if metadata else id


def _drift(telemetry: Telemetry, vectors: list[FeatureVector], summary: Summary, checks: list[Check]) -> None:
    """A baseline from the parts (with small variations, to have a distribution), then a stream
    like it, then one of parts three times as large: the size group drifts."""
    if not vectors:
        return
    layout = FeatureExtractor("v4").layout
    base = np.array([vector.values for vector in vectors])
    rng = np.random.default_rng(7)
    baseline = Baseline.from_vectors(_varied(base, rng, 3000), layout=layout, source="demo parts")
    monitor = DriftMonitor(baseline, telemetry=telemetry, window=300, max_age=30 * 86400)
    stable = monitor.observe(_varied(base, rng, 3600))
    grown = _varied(base, rng, 900)
    size = [index for index, feature in enumerate(layout.features) if feature.group == "size"]
    grown[:, size] *= 3.0
    shifted = monitor.observe(grown)
    checks += monitor.health()
    summary.add(
        "drift",
        f"{len(stable)} windows like the baseline: PSI {max(max(r.group_psi.values()) for r in stable):.2f} "
        "at most; "
        f"parts 3x larger: size PSI {shifted[-1].score('size'):.2f}, anomalies in "
        f"{sorted({group for report in shifted for group in report.anomalies}) or 'none'}",
    )


def _varied(base: np.ndarray, rng: np.random.Generator, rows: int) -> np.ndarray:
    picked = base[rng.integers(0, base.shape[0], rows)]
    return picked * rng.normal(1.0, 0.1, picked.shape)


def _overflow(telemetry: Telemetry, summary: Summary) -> None:
    """A value the contract does not admit is exported as ``__overflow__`` and counted."""
    if telemetry.strict:
        return
    telemetry.counter("cadmetrics_feature_extraction_errors_total").inc(format="stp", reason="malformed")
    summary.add("label overflow", "format='stp' is not in the contract: exported as __overflow__, counted")
    if telemetry.tracing:
        with telemetry.span("cadmetrics.features.extract", version="v4", result="error", format="stp"):
            pass
        summary.add("span attribute overflow", "format='stp' on a span: recorded as __overflow__, counted")


def traffic(
    telemetry: Telemetry, files: list[Path], workdir: Path, components: list[Any] | None = None
) -> Iterator[None]:
    """Steady requests after the walk, one kind per step, so that every rate and quantile on
    the dashboards has fresh samples while the metrics are served: extractions computed and
    cached, searches, drift windows, model reloads, and now and then a refused model and a
    label value out of the contract."""
    computing = FeatureExtractor("v4", cache=FeatureCache.disabled(), telemetry=telemetry)
    cached = FeatureExtractor("v4", telemetry=telemetry)
    store = VectorStore.open(None, telemetry=telemetry)
    vectors = []
    for path in files:
        with contextlib.suppress(FeatureError):
            features = cached.extract(path)
            store.add_features(features)
            vectors.append(features.values)
    base = np.array(vectors) if vectors else np.ones((2, cached.layout.dimension))
    rng = np.random.default_rng(11)
    monitor = DriftMonitor(
        Baseline.from_vectors(_varied(base, rng, 1000), layout=cached.layout, source="demo parts"),
        telemetry=telemetry,
        window=50,
    )
    model = workdir / "model-traffic.pkl"
    model.write_bytes(pickle.dumps(LinearModel(np.ones(4))))
    refused = [workdir / "traffic-hostile.pkl", workdir / "traffic-no-predict.pkl"]
    refused[0].write_bytes(pickle.dumps(_RunsCode()))
    refused[1].write_bytes(pickle.dumps({"weights": [1.0]}))
    loader = ModelLoader(policy=TRUSTED, telemetry=telemetry)
    loader.load(model)
    if components is not None:  # what the demo's /health reports on
        components += [cached, loader, store, monitor]
    step = 0
    while True:
        if step % 15 == 5:  # the safeguards keep showing, so their alerts fire while this runs
            for path in refused:
                with contextlib.suppress(ModelRefused):
                    loader.load(path)
            _overflow(telemetry, Summary())
        path = files[step % len(files)]
        with contextlib.suppress(FeatureError):
            computing.extract(path)
            cached.extract(path)
        store.search(base[step % base.shape[0]], k=3)
        monitor.observe(_varied(base, rng, 10))
        if step % 10 == 0:
            loader.load(model)
        step += 1
        yield


def _box_stl(a: float, b: float, c: float, *, lid: bool = True) -> bytes:
    """A binary STL box; without its ``lid`` (the two triangles of one side) it is open."""
    corners = np.array([[x, y, z] for x in (0, a) for y in (0, b) for z in (0, c)], dtype=np.float32)
    faces = [
        (0, 2, 1), (1, 2, 3), (4, 5, 6), (5, 7, 6), (0, 1, 4), (1, 5, 4),
        (2, 6, 3), (3, 6, 7), (0, 4, 2), (2, 4, 6), (1, 3, 5), (3, 7, 5),
    ]  # fmt: skip
    if not lid:
        faces = faces[:-2]
    records = b"".join(
        struct.pack("<3f", 0, 0, 0) + corners[list(face)].tobytes() + b"\x00\x00" for face in faces
    )
    return b"\x00" * 80 + struct.pack("<I", len(faces)) + records
