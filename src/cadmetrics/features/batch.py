"""Many files at once, on any ``concurrent.futures.Executor``.

Threads share the calling extractor (its L1 cache, its telemetry). Any other executor (a
process pool, a dask.distributed client's executor...) runs a module-level function on a
picklable description of the extractor; each worker process builds its extractor once and
keeps it, L1 cache included, and runs BLAS on one thread (the pool has the cores); the host's
key history still records every request, so cache tuning sees the whole batch. An executor
of another kind that runs in this process is treated like a process pool: to share this
extractor's L1 cache, use threads. Workers emit metrics through prometheus_client's
multiprocess mode when ``PROMETHEUS_MULTIPROC_DIR`` is set (the host's registry then gathers
them all); otherwise their metrics stay in the worker.
"""

from __future__ import annotations

import functools
import os
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor, as_completed
from typing import TYPE_CHECKING, Any

import attrs
from threadpoolctl import ThreadpoolController

from cadmetrics.errors import FeatureError
from cadmetrics.features.cache import FeatureCache
from cadmetrics.features.vector import FeatureConfig
from cadmetrics.progress import progress_bar
from cadmetrics.telemetry.workers import worker_telemetry

if TYPE_CHECKING:
    from cadmetrics.features.extractor import FeatureExtractor, FeatureVector, Source


@attrs.frozen
class ExtractorSpec:
    """What a worker needs to build the same extractor: picklable, unlike the extractor (its
    class travels by reference, so a worker builds a subclass as the host made it)."""

    kind: type[FeatureExtractor]
    version: str
    config: FeatureConfig
    max_bytes: int
    shared_cache: Any = None  # a picklable L2 level (RedisCache pickles as its settings)
    brep: bool = False
    unit: str | None = None


#: Extractors a worker process keeps, most recently used last; a few, as a worker may serve
#: batches of several versions or settings.
_WORKER_EXTRACTORS: OrderedDict[ExtractorSpec, FeatureExtractor] = OrderedDict()
_KEPT_EXTRACTORS = 4


def extract_in_worker(spec: ExtractorSpec, source: Source) -> FeatureVector | FeatureError:
    """One extraction in a worker process, errors returned rather than raised."""
    extractor = _WORKER_EXTRACTORS.get(spec)
    if extractor is None:
        extractor = _build(spec)
        _WORKER_EXTRACTORS[spec] = extractor
        while len(_WORKER_EXTRACTORS) > _KEPT_EXTRACTORS:
            _WORKER_EXTRACTORS.popitem(last=False)
    _WORKER_EXTRACTORS.move_to_end(spec)
    with _one_thread_each().limit(limits=1, user_api="blas"):
        return _guarded(extractor, source)


@functools.cache
def _one_thread_each() -> ThreadpoolController:
    """The worker's BLAS thread pools. A pool of as many workers as cores, each running
    BLAS on every core, puts cores squared threads on the cores; each worker's extraction
    runs its BLAS on one thread instead (as loky's workers do)."""
    return ThreadpoolController()


def _build(spec: ExtractorSpec) -> FeatureExtractor:
    return spec.kind(
        spec.version,
        config=spec.config,
        cache=FeatureCache(l2=spec.shared_cache),
        telemetry=worker_telemetry(),
        max_bytes=spec.max_bytes,
        brep=spec.brep,
        unit=spec.unit,
    )


def _guarded(extractor: FeatureExtractor, source: Source) -> FeatureVector | FeatureError:
    try:
        return extractor.extract(source)
    except FeatureError as error:
        return error
    except Exception as exc:  # one bad item must not end the batch
        return FeatureError(f"{_shown(source)}: {type(exc).__name__}: {exc}", reason="internal")


def _shown(source: Source) -> str:
    return str(
        getattr(source, "source", None) or (source if isinstance(source, str | os.PathLike) else "<bytes>")
    )


def extract_many(
    extractor: FeatureExtractor,
    sources: Iterable[Source],
    executor: Executor | None = None,
    *,
    progress: bool | None = None,
) -> list[FeatureVector | FeatureError]:
    """Results in the order of ``sources``: a vector, or the error of that item."""
    items: Sequence[Source] = list(sources)
    bar = progress_bar(len(items), unit="file", description="features", show=progress)
    results: list[FeatureVector | FeatureError | None] = [None] * len(items)
    try:
        if executor is None:
            for index, source in enumerate(items):
                results[index] = _guarded(extractor, source)
                bar.update(1)
        else:
            futures: dict[Future[FeatureVector | FeatureError], int] = {}
            if isinstance(executor, ThreadPoolExecutor):
                for index, source in enumerate(items):
                    futures[executor.submit(_guarded, extractor, source)] = index
            else:
                spec = ExtractorSpec(
                    type(extractor),
                    extractor.version,
                    extractor.config,
                    extractor.max_bytes,
                    extractor.cache.l2,
                    extractor.brep,
                    extractor.unit,
                )
                for index, source in enumerate(items):
                    futures[executor.submit(extract_in_worker, spec, source)] = index
            for future in as_completed(futures):
                index = futures[future]
                try:
                    results[index] = future.result()
                except Exception as exc:  # the executor itself failed this item
                    results[index] = FeatureError(
                        f"{_shown(items[index])}: the executor failed: {type(exc).__name__}: {exc}"
                    )
                bar.update(1)
    finally:
        bar.close()
    if executor is not None and not isinstance(executor, ThreadPoolExecutor):  # tuning sees them too
        vectors = [
            result for result in results if result is not None and not isinstance(result, FeatureError)
        ]
        extractor.observe_requests(vector.sha256 for vector in vectors)
    return [result if result is not None else FeatureError("not run") for result in results]
