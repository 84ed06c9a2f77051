"""``Baseline``: what "no drift" looks like, and when and from what that was decided.

A baseline holds, per feature, quantile bin edges with the baseline's proportions in them (for
the PSI) and a bounded sample of its rows, sorted per column (for the KS statistic). Its
``created_at`` and ``source`` are part of it and are saved with it, so that its age read after a
restart is its real age, not the time since the process started.

One file holds it all: an ``.npz`` archive (``allow_pickle=False`` on load, so a file can
carry numbers and text but never code) with a JSON header, written atomically.
"""

from __future__ import annotations

import io
import json
import math
import time
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from cadmetrics.drift.statistics import DEFAULT_BINS, FloatArray, bin_counts, first_non_finite, quantile_edges
from cadmetrics.durable import write_atomically
from cadmetrics.errors import DriftError
from cadmetrics.features.layout import FeatureLayout

#: What the header's ``format`` says, and the one version of it this release reads and writes.
FORMAT = "cadmetrics-drift-baseline"
FORMAT_VERSION = 1

#: Rows kept for the KS statistic unless asked otherwise: enough that the baseline's own
#: sampling error (about 1.36 / sqrt(2048) = 0.03 at 95%) stays small beside a window's.
DEFAULT_SAMPLE_SIZE = 2048

#: The group of every feature when none is given.
DEFAULT_GROUP = "all"

#: Rows read at once while counting a large baseline: bounds the temporary arrays.
_CHUNK_ROWS = 8192

_HEADER = "header"
_ARRAYS = ("edges", "proportions", "reference")


def _frozen_array(value: npt.ArrayLike) -> FloatArray:
    array = np.array(value, dtype=np.float64)  # a copy: the caller's array stays the caller's
    array.setflags(write=False)
    return array


def _strings(values: Iterable[str]) -> tuple[str, ...]:
    if isinstance(values, str):  # one name is not a sequence of one-letter names
        raise DriftError(f"names and groups are sequences of strings, not the string {values!r}")
    return tuple(str(value) for value in values)


@attrs.frozen(eq=False)
class Baseline:
    """The reference distribution of ``names`` (one ``group`` each) that drift is measured
    against.

    ``edges`` are the per-feature bin cut points (``(bins - 1, features)``, ``+inf``-padded,
    see :mod:`cadmetrics.drift.statistics`), ``proportions`` the baseline's share of rows in each
    bin (``(bins, features)``), ``reference`` a uniform sample of at most ``sample_size`` rows,
    each column sorted. ``count`` is the number of rows it was made from, ``created_at`` when
    (UTC epoch seconds), ``source`` from what (free text from the caller), ``version`` the
    feature version when known.
    """

    names: tuple[str, ...] = attrs.field(converter=_strings)
    groups: tuple[str, ...] = attrs.field(converter=_strings)
    edges: FloatArray = attrs.field(converter=_frozen_array)
    proportions: FloatArray = attrs.field(converter=_frozen_array)
    reference: FloatArray = attrs.field(converter=_frozen_array)
    count: int
    created_at: float
    source: str
    version: str | None = None

    def __attrs_post_init__(self) -> None:
        features = len(self.names)
        problems = []
        if features == 0:
            problems.append("it has no features")
        if len(set(self.names)) != features:
            problems.append(f"names repeat: {sorted({n for n in self.names if self.names.count(n) > 1})}")
        if len(self.groups) != features:
            problems.append(f"{len(self.groups)} groups for {features} names")
        bins = self.proportions.shape[0]
        shapes = {
            "edges": (self.edges.shape, (bins - 1, features)),
            "proportions": (self.proportions.shape, (bins, features)),
        }
        for what, (shape, wanted) in shapes.items():
            if shape != wanted:
                problems.append(f"{what} has shape {shape}, not {wanted}")
        if self.reference.ndim != 2 or self.reference.shape[1] != features or self.reference.shape[0] < 1:
            problems.append(f"reference has shape {self.reference.shape}, not (rows >= 1, {features})")
        if not problems:
            problems += _array_problems(self.edges, self.proportions, self.reference)
        if self.count < 2:
            problems.append(f"it was made from {self.count} rows")
        if not math.isfinite(self.created_at):
            problems.append(f"created_at is {self.created_at}")
        if problems:
            raise DriftError(f"not a valid baseline ({self.source or 'no source'}): " + "; ".join(problems))

    # -- making one -----------------------------------------------------------------------

    @classmethod
    def from_vectors(
        cls,
        vectors: npt.ArrayLike,
        *,
        names: Sequence[str] | None = None,
        groups: Sequence[str] | None = None,
        layout: FeatureLayout | None = None,
        source: str,
        version: str | None = None,
        bins: int = DEFAULT_BINS,
        sample_size: int = DEFAULT_SAMPLE_SIZE,
        seed: int = 0,
        created_at: float | None = None,
    ) -> Baseline:
        """The baseline of ``vectors`` (rows of features), named by ``layout`` or by ``names``
        and ``groups`` (default: one group, ``"all"``; default names ``f0, f1, ...``).

        Bin edges come from the reference sample (all rows when there are at most
        ``sample_size``), proportions from every row, counted in chunks, so a memory-mapped
        array of any length can be given. ``seed`` fixes the sample: the same rows and
        arguments give the same baseline. ``created_at`` defaults to now.
        """
        try:
            data = np.asarray(vectors)  # no copy and no conversion yet: a memory map stays one
        except ValueError as exc:  # ragged rows
            raise DriftError(f"baseline vectors for {source!r} are not a table of numbers: {exc}") from None
        if data.ndim != 2:
            raise DriftError(
                f"baseline vectors for {source!r} must be a (rows, features) array, not of shape {data.shape}"
            )
        rows, width = data.shape
        names, groups, version = _naming(
            width=width, names=names, groups=groups, layout=layout, version=version, source=source
        )
        if rows < 2:
            raise DriftError(f"a baseline needs at least 2 rows; {source!r} gave {rows}")
        if bins < 2:
            raise DriftError(f"a baseline needs at least 2 bins, not {bins}")
        if sample_size < 2:
            raise DriftError(f"a baseline's reference sample needs at least 2 rows, not {sample_size}")
        for start in range(0, rows, _CHUNK_ROWS):
            _check_finite(_rows(data, start, start + _CHUNK_ROWS, source), start, names, source)

        if rows > sample_size:
            rng = np.random.default_rng(seed)
            picked = np.sort(rng.choice(rows, size=sample_size, replace=False))
            reference = np.asarray(data[picked], dtype=np.float64)
        else:
            reference = _rows(data, 0, rows, source)
        edges = quantile_edges(reference, bins)
        counts = np.zeros((bins, width), dtype=np.int64)
        for start in range(0, rows, _CHUNK_ROWS):
            counts += bin_counts(_rows(data, start, start + _CHUNK_ROWS, source), edges)
        return cls(
            names=names,
            groups=groups,
            edges=edges,
            proportions=counts / rows,
            reference=np.sort(reference, axis=0),
            count=rows,
            created_at=time.time() if created_at is None else float(created_at),
            source=source,
            version=version,
        )

    # -- reading it -----------------------------------------------------------------------

    @property
    def dimension(self) -> int:
        return len(self.names)

    @property
    def bins(self) -> int:
        return int(self.proportions.shape[0])

    @property
    def group_names(self) -> tuple[str, ...]:
        """The distinct groups, in the order of their first feature."""
        return tuple(dict.fromkeys(self.groups))

    def age(self, now: float | None = None) -> float:
        """Seconds since the baseline was made (``now`` defaults to the wall clock). A baseline
        made on a machine whose clock ran ahead reads as new (0), never as negative."""
        return max(0.0, (time.time() if now is None else now) - self.created_at)

    def same_as(self, other: Baseline) -> bool:
        """Every field equal, arrays bit for bit (``==`` is identity: arrays have no single
        truth value)."""
        return (
            (self.names, self.groups, self.count, self.created_at, self.source, self.version)
            == (other.names, other.groups, other.count, other.created_at, other.source, other.version)
        ) and all(
            np.array_equal(getattr(self, name), getattr(other, name), equal_nan=True) for name in _ARRAYS
        )

    # -- keeping it -----------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The file's content: a zip of ``.npy`` members with fixed timestamps, so the same
        baseline always gives the same bytes."""
        header = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "names": list(self.names),
            "groups": list(self.groups),
            "count": self.count,
            "created_at": self.created_at,  # repr of a float reads back to the same float
            "source": self.source,
            "version": self.version,
        }
        members: dict[str, npt.NDArray[Any]] = {
            _HEADER: np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8),
            **{name: getattr(self, name) for name in _ARRAYS},
        }
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, array in members.items():
                info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                with archive.open(info, "w") as member:
                    np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
        return buffer.getvalue()

    def save(self, path: str | Path) -> Path:
        """Write the baseline to ``path`` atomically: a crash leaves the old file or the new."""
        target = Path(path)
        write_atomically(target, self.to_bytes())
        return target

    @classmethod
    def from_bytes(cls, data: bytes, where: str = "<bytes>") -> Baseline:
        """A baseline back from :meth:`to_bytes`; ``where`` names it in errors."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as archive:
                files = set(archive.files)
                if _HEADER not in files:
                    raise DriftError(f"{where}: not a drift baseline (no header member)")
                missing = [name for name in _ARRAYS if name not in files]
                header = _header(archive[_HEADER], where)
                if missing:
                    raise DriftError(f"{where}: damaged drift baseline: {', '.join(missing)} missing")
                arrays = {name: archive[name] for name in _ARRAYS}
        except DriftError:
            raise
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
            raise DriftError(f"{where}: not a drift baseline ({type(exc).__name__}: {exc})") from None
        try:
            return cls(
                names=header["names"],
                groups=header["groups"],
                edges=arrays["edges"],
                proportions=arrays["proportions"],
                reference=arrays["reference"],
                count=int(header["count"]),
                created_at=float(header["created_at"]),
                source=str(header["source"]),
                version=None if header.get("version") is None else str(header["version"]),
            )
        except DriftError as exc:
            raise DriftError(f"{where}: damaged drift baseline: {exc}") from None
        except (KeyError, TypeError, ValueError) as exc:
            raise DriftError(
                f"{where}: damaged drift baseline header ({type(exc).__name__}: {exc})"
            ) from None

    @classmethod
    def load(cls, path: str | Path) -> Baseline:
        """The baseline saved at ``path``, with its original ``created_at``."""
        source = Path(path)
        try:
            data = source.read_bytes()
        except FileNotFoundError:
            raise DriftError(f"{source}: no such drift baseline file") from None
        except OSError as exc:
            raise DriftError(f"{source}: cannot read the drift baseline: {exc.strerror or exc}") from None
        return cls.from_bytes(data, str(source))


def _header(member: npt.NDArray[Any], where: str) -> dict[str, Any]:
    if member.dtype != np.uint8 or member.ndim != 1:
        raise DriftError(f"{where}: not a drift baseline (header is not JSON text)")
    try:
        header = json.loads(member.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DriftError(f"{where}: not a drift baseline (header is not JSON: {exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise DriftError(f"{where}: not a drift baseline (format is not {FORMAT!r})")
    found = header.get("format_version")
    if found != FORMAT_VERSION:
        raise DriftError(
            f"{where}: drift baseline format version {found!r} is not supported "
            f"(this release reads version {FORMAT_VERSION}); make the baseline again"
        )
    return header


def _naming(
    *,
    width: int,
    names: Sequence[str] | None,
    groups: Sequence[str] | None,
    layout: FeatureLayout | None,
    version: str | None,
    source: str,
) -> tuple[tuple[str, ...], tuple[str, ...], str | None]:
    """Names, groups and version from the layout or the arguments, checked against the width."""
    if layout is not None:
        if names is not None or groups is not None:
            raise DriftError(f"baseline {source!r}: give a layout or names and groups, not both")
        if layout.dimension != width:
            raise DriftError(
                f"baseline {source!r}: vectors have {width} features, "
                f"layout {layout.version} has {layout.dimension}"
            )
        if version is not None and version != layout.version:
            raise DriftError(f"baseline {source!r}: version {version!r} but layout {layout.version!r}")
        return layout.names, layout.groups, layout.version
    named = _strings(names) if names is not None else tuple(f"f{index}" for index in range(width))
    grouped = _strings(groups) if groups is not None else (DEFAULT_GROUP,) * len(named)
    if len(named) != width:
        raise DriftError(f"baseline {source!r}: vectors have {width} features but {len(named)} names")
    if len(grouped) != len(named):
        raise DriftError(f"baseline {source!r}: {len(grouped)} groups for {len(named)} names")
    return named, grouped, version


def _array_problems(edges: FloatArray, proportions: FloatArray, reference: FloatArray) -> list[str]:
    """What makes arrays of the right shapes still unusable (a damaged or hand-made file)."""
    problems = []
    if np.isnan(edges).any() or (edges[1:] < edges[:-1]).any():
        problems.append("edges are not ascending in every column")
    if not np.isfinite(proportions).all() or (proportions < 0).any():
        problems.append("proportions are not all finite and non-negative")
    elif not np.allclose(proportions.sum(axis=0), 1.0, rtol=0, atol=1e-9):
        problems.append("proportions do not add up to 1 in every column")
    if not np.isfinite(reference).all() or (reference[1:] < reference[:-1]).any():
        problems.append("reference is not finite and sorted in every column")
    return problems


def _rows(data: npt.NDArray[Any], start: int, stop: int, source: str) -> FloatArray:
    stop = min(stop, data.shape[0])
    try:
        return np.asarray(data[start:stop], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DriftError(f"baseline {source!r}: rows {start} to {stop - 1} are not numbers: {exc}") from None


def _check_finite(chunk: FloatArray, offset: int, names: Sequence[str], source: str) -> None:
    found = first_non_finite(chunk)
    if found is not None:
        row, column = found
        raise DriftError(
            f"baseline {source!r}: row {offset + row}, feature {names[column]!r} is "
            f"{chunk[row, column]}; drift needs finite values"
        )
