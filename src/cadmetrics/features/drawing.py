"""Features of 2D drawings (DXF), read through the optional ``dxf`` extra (ezdxf).

A drawing is not a mesh: it has no area or volume to describe, but it has entities, layers,
blocks, an extent and lengths of drawn curves. :func:`read_drawing` reads ASCII DXF of every
version ezdxf knows (R12 to R2018) and binary DXF from bytes, and measures the modelspace.

The rules, chosen once and applied everywhere (``docs/drawing-features.md`` has the why):

- ``entity_counts`` counts the modelspace entities as the file stores them: a block
  reference is one ``INSERT`` and what it expands to is not counted there.
- Lengths, extents and ``text_count`` describe what is drawn: block references (and
  MINSERT grids, nested blocks, MLINEs) are expanded into the entities they place.
  Dimensions, leaders and tables are annotation and are not expanded.
- Text is never geometry: its box depends on fonts installed on the machine, so extents
  cover curves, points, hatches, solids and meshes only. A drawing with no such geometry
  (an empty or text-only drawing) is a valid result with zero lengths and no extents.
- A DXF without its closing ``EOF`` tag is refused as truncated, even when ezdxf could
  recover the part before the cut: features of a partial drawing would be silently wrong.
  Flaws that ezdxf's recover and audit fix are counted in ``repairs``, the ones they cannot
  fix in ``unrepaired``.

ezdxf is imported when a drawing is read, never when this module is imported.
"""

from __future__ import annotations

import importlib
import io
import itertools
import math
import re
import struct
import types
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final

import attrs
import numpy as np

from cadmetrics.errors import FeatureInputError, MissingDependency
from cadmetrics.features.drawing_lengths import CURVE_TOLERANCE, curve_length, curve_tolerance
from cadmetrics.features.mesh import MAX_COORDINATE

if TYPE_CHECKING:
    from ezdxf.audit import Auditor
    from ezdxf.document import Drawing as EzdxfDocument
    from ezdxf.entities.dxfgfx import DXFGraphic

FORMAT: Final = "dxf"

#: Entity types counted one by one in :meth:`Drawing.feature_values`; the rest is summed
#: into ``other_entities``.
COUNTED_TYPES: Final = (
    "LINE",
    "LWPOLYLINE",
    "POLYLINE",
    "ARC",
    "CIRCLE",
    "ELLIPSE",
    "SPLINE",
    "TEXT",
    "MTEXT",
    "INSERT",
    "DIMENSION",
    "HATCH",
    "POINT",
)

#: The names of :meth:`Drawing.feature_values`, in order. Stable: a feature layout declares them.
FEATURE_NAMES: Final = (
    *(f"{dxftype.lower()}_entities" for dxftype in COUNTED_TYPES),
    "other_entities",
    "layer_count",
    "layers_used",
    "block_count",
    "extents_width",
    "extents_height",
    "extents_depth",
    "line_length",
    "arc_length",
    "text_count",
)

#: A drawing whose block references expand to more entities than this is refused
#: (``too_large``): nested blocks can multiply a small file into billions of entities.
MAX_EXPANDED_ENTITIES: Final = 1_000_000

#: The drawn curves are also kept as straight segments for the D2 distribution, flattened
#: within this fraction of each curve's size: coarser than for lengths, as a sample of
#: distances needs the shape, not the last digit of its length.
SEGMENT_TOLERANCE: Final = 1e-3

_BINARY_SENTINEL: Final = b"AutoCAD Binary DXF\r\n\x1a\x00"
_UTF8_BOM: Final = b"\xef\xbb\xbf"
_TRAILING: Final = b" \t\r\n\x00\x1a"

_EXPANDED: Final = frozenset({"INSERT", "MLINE"})
_TEXT: Final = frozenset({"TEXT", "MTEXT", "ATTRIB"})
_NOT_GEOMETRY: Final = _TEXT | {
    "ATTDEF",
    "DIMENSION",
    "ARC_DIMENSION",
    "LARGE_RADIAL_DIMENSION",
    "LEADER",
    "MLEADER",
    "MULTILEADER",
    "TOLERANCE",
    "ACAD_TABLE",
    "VIEWPORT",
}
_STRAIGHT: Final = frozenset({"LINE", "LWPOLYLINE", "POLYLINE", "SPLINE"})
_CURVED: Final = frozenset({"ARC", "CIRCLE", "ELLIPSE"})

# What ezdxf raises on input it cannot read: its own errors, and plain Python errors from
# parsing code that trusts the data (int() of a bad tag, struct on a short binary record).
_READ_ERRORS: Final = (
    ValueError,
    IndexError,
    KeyError,
    EOFError,
    struct.error,
    ArithmeticError,
    RecursionError,
    TypeError,
    AttributeError,
    AssertionError,  # ezdxf asserts on the data it reads
)


def _frozen_counts(counts: Mapping[str, int]) -> Mapping[str, int]:
    return types.MappingProxyType(dict(sorted(counts.items())))


Point3 = tuple[float, float, float]


@attrs.frozen
class Drawing:
    """What :func:`read_drawing` measured in a drawing's modelspace, in drawing units."""

    entity_counts: Mapping[str, int] = attrs.field(converter=_frozen_counts, hash=False)
    layer_count: int  # layers defined in the layer table, except Defpoints
    layers_used: int  # distinct layers (case-insensitive) of the modelspace entities
    block_count: int  # named block definitions: no layout, anonymous or arrowhead blocks
    extents_min: Point3 | None  # None when the drawing has no geometry
    extents_max: Point3 | None
    line_length: float  # LINE, LWPOLYLINE and POLYLINE (bulges as arcs), SPLINE
    arc_length: float  # ARC, CIRCLE, ELLIPSE
    text_count: int  # TEXT, MTEXT and ATTRIB, including those in inserted blocks
    dxf_version: str  # as stored in the file, e.g. "AC1009" for R12
    source: str = "<bytes>"
    repairs: int = 0  # flaws ezdxf's recover and audit fixed
    unrepaired: int = 0  # flaws they reported but could not fix
    unit: str | None = None  # the length unit $INSUNITS declares (a units.LENGTH_UNITS name)
    #: the drawn curves (lines, polylines, arcs, circles, ellipses, splines) as straight
    #: segments ``(k, 2, 3)``, for distributions of the drawing's shape
    segments: Any = attrs.field(factory=lambda: np.zeros((0, 2, 3)), eq=False, repr=False)

    @property
    def size(self) -> Point3:
        """Width, height and depth of the extents; zeros when there is no geometry."""
        if self.extents_min is None or self.extents_max is None:
            return (0.0, 0.0, 0.0)
        low, high = self.extents_min, self.extents_max
        return (high[0] - low[0], high[1] - low[1], high[2] - low[2])

    def feature_values(self) -> dict[str, float]:
        """The numeric features, named and ordered as :data:`FEATURE_NAMES`."""
        counted = [float(self.entity_counts.get(dxftype, 0)) for dxftype in COUNTED_TYPES]
        other = sum(n for dxftype, n in self.entity_counts.items() if dxftype not in COUNTED_TYPES)
        width, height, depth = self.size
        numbers = (
            *counted,
            float(other),
            float(self.layer_count),
            float(self.layers_used),
            float(self.block_count),
            width,
            height,
            depth,
            self.line_length,
            self.arc_length,
            float(self.text_count),
        )
        return dict(zip(FEATURE_NAMES, numbers, strict=True))


def values(drawing: Drawing) -> dict[str, float]:
    """The drawing's numeric features: :meth:`Drawing.feature_values`."""
    return drawing.feature_values()


def _refuse(source: str, reason: str, problem: str) -> FeatureInputError:
    return FeatureInputError(f"{source}: {problem}", reason=reason, format=FORMAT)


#: The $INSUNITS codes of the length units :mod:`cadmetrics.features.units` knows; 0 is
#: "unitless", and the astronomical and survey units are left out (no unit).
_INSUNITS: Final = {
    1: "in", 2: "ft", 3: "mi", 4: "mm", 5: "cm", 6: "m", 7: "km", 8: "uin", 9: "mil", 10: "yd",
    12: "nm", 13: "um", 14: "dm",
}  # fmt: skip


def read_drawing(data: bytes, *, source: str = "<bytes>") -> Drawing:
    """Read a DXF drawing (ASCII or binary) from ``data`` and measure its modelspace.

    Raises :class:`MissingDependency` without ezdxf, and :class:`FeatureInputError` naming
    ``source`` for input that gives no features: ``empty``, ``truncated`` (no closing EOF
    tag), ``malformed`` (not a DXF, or a structure ezdxf cannot read), ``unsupported_format``
    (a DXF version ezdxf does not know), ``non_finite`` coordinates, or ``too_large`` (block
    references expanding beyond :data:`MAX_EXPANDED_ENTITIES`).
    """
    try:
        # the package itself first: its submodules can outlive it in sys.modules
        importlib.import_module("ezdxf")
        from ezdxf.lldxf.const import DXFError, DXFVersionError
    except ImportError as exc:
        raise MissingDependency(
            f"{source}: reading DXF drawings needs ezdxf: pip install cadmetrics[dxf]", format=FORMAT
        ) from exc
    if not data.strip(_TRAILING):
        raise _refuse(source, "empty", f"no data ({len(data)} bytes)")
    binary = data.startswith(_BINARY_SENTINEL)
    if not binary and not _starts_like_dxf(data):
        raise _refuse(source, "malformed", "not a DXF file: it does not start with a '0 / SECTION' tag")
    if not _ends_with_eof(data, binary):
        raise _refuse(source, "truncated", f"the DXF ends after {len(data)} bytes without its EOF tag")
    try:
        document, auditor = _load(data, binary)
    except DXFVersionError as exc:
        raise _refuse(source, "unsupported_format", f"unsupported DXF version ({exc})") from exc
    except (DXFError, *_READ_ERRORS) as exc:
        raise _refuse(source, "malformed", f"unreadable DXF structure ({type(exc).__name__}: {exc})") from exc
    try:
        return _measure(document, auditor, source)
    except FeatureInputError:
        raise
    except (DXFError, *_READ_ERRORS) as exc:
        raise _refuse(
            source, "malformed", f"geometry that cannot be evaluated ({type(exc).__name__}: {exc})"
        ) from exc


def _starts_like_dxf(data: bytes) -> bool:
    """Whether the first tag, after ``999`` comments, is ``0 / SECTION``, as in every DXF."""
    head = data[:4096].removeprefix(_UTF8_BOM).decode("latin-1")
    lines = [line.strip() for line in head.splitlines()]
    while lines and not lines[0]:
        lines.pop(0)
    while len(lines) >= 2 and lines[0] == "999":
        del lines[:2]
    return len(lines) >= 2 and lines[0] == "0" and lines[1].upper() == "SECTION"


def _ends_with_eof(data: bytes, binary: bool) -> bool:
    if binary:
        return data.endswith(b"\x00EOF\x00")
    return re.search(rb"(?:^|[\r\n])[ \t]*EOF$", data.rstrip(_TRAILING)) is not None


def _load(data: bytes, binary: bool) -> tuple[EzdxfDocument, Auditor]:
    """ezdxf's reader for bytes: recover for ASCII (it finds the encoding and repairs what
    it can), the binary tag loader plus an audit for binary DXF, which recover cannot read."""
    from ezdxf import recover

    if not binary:
        return recover.read(io.BytesIO(data))
    from ezdxf.document import Drawing as Document
    from ezdxf.lldxf.tagger import binary_tags_loader

    document = Document.load(binary_tags_loader(data))
    return document, document.audit()


def _measure(document: EzdxfDocument, auditor: Auditor, source: str) -> Drawing:
    from ezdxf import disassemble
    from ezdxf.math import BoundingBox
    from ezdxf.render.arrows import ARROWS

    modelspace = list(document.modelspace())
    arrowheads = {ARROWS.block_name(name).casefold() for name in ARROWS.__acad__}
    blocks = [
        block
        for block in document.blocks
        if not (
            block.name.startswith("*")  # layouts (*Model_Space, *Paper_Space...) and anonymous
            or block.block is None
            or block.block.is_anonymous
            or block.name.casefold() in arrowheads
        )
    ]
    layers = [layer for layer in document.layers if layer.dxf.name.casefold() != "defpoints"]
    line_parts: list[float] = []
    arc_parts: list[float] = []
    text_count = 0
    extents = BoundingBox()
    segments: list[Any] = []
    for entity in _expand(modelspace, source):
        dxftype = entity.dxftype()
        if dxftype in _TEXT:
            text_count += 1
        if dxftype in _NOT_GEOMETRY:
            continue
        _check_attributes(entity, source)
        if dxftype in _STRAIGHT:
            line_parts.append(curve_length(entity))
        elif dxftype in _CURVED:
            arc_parts.append(curve_length(entity))
        primitive = disassemble.make_primitive(entity)
        if primitive.is_empty:
            continue
        _check_points(_defining_points(primitive), entity, source)
        box = primitive.bbox(fast=False)
        extents.extend(box)
        if dxftype in _STRAIGHT or dxftype in _CURVED:
            segments.extend(_segments(primitive, box))
    line_length, arc_length = math.fsum(line_parts), math.fsum(arc_parts)
    extents_min = extents_max = None
    if extents.has_data:
        extents_min = _point(extents.extmin)
        extents_max = _point(extents.extmax)
    if not all(map(math.isfinite, (line_length, arc_length, *(extents_min or ()), *(extents_max or ())))):
        raise _refuse(source, "non_finite", "the geometry has an infinite coordinate or length")
    return Drawing(
        entity_counts=Counter(entity.dxftype() for entity in modelspace),
        layer_count=len(layers),
        layers_used=len({str(entity.dxf.get("layer", "0")).casefold() for entity in modelspace}),
        block_count=len(blocks),
        extents_min=extents_min,
        extents_max=extents_max,
        line_length=line_length,
        arc_length=arc_length,
        text_count=text_count,
        dxf_version=str(document.loaded_dxfversion or document.dxfversion),
        source=source,
        repairs=len(auditor.fixes),
        unrepaired=len(auditor.errors),
        unit=_INSUNITS.get(int(document.header.get("$INSUNITS", 0) or 0)),
        segments=np.concatenate(segments) if segments else np.zeros((0, 2, 3)),
    )


def _segments(primitive: Any, box: Any) -> Iterator[Any]:
    """A curve's flattening as segments ``(k, 2, 3)``, one array per connected piece."""
    if primitive.path is None or not box.has_data:
        return
    size = float(box.size.magnitude)
    if size == 0.0:
        return
    tolerance = curve_tolerance(size, box.extmin) * (SEGMENT_TOLERANCE / CURVE_TOLERANCE)
    for piece in primitive.path.sub_paths():
        flat = [tuple(vertex) for vertex in piece.flattening(tolerance)]
        points = np.array(flat, dtype=np.float64).reshape(-1, 3)
        if len(points) >= 2:
            yield np.stack([points[:-1], points[1:]], axis=1)


def _expand(entities: Iterable[DXFGraphic], source: str) -> Iterator[DXFGraphic]:
    """The drawn entities: block references replaced by what they place, recursively.

    A block that (through nesting) references itself is expanded once and its reference to
    itself skipped: AutoCAD refuses such blocks, and following them would never end. Every
    entity and every block reference counts against :data:`MAX_EXPANDED_ENTITIES`, a MINSERT
    grid as its rows times its columns before any of it is placed: a grid of a billion
    references to an empty block places nothing, and would still take hours to walk.
    """
    expanded = 0

    def count(more: int) -> None:
        nonlocal expanded
        expanded += more
        if expanded > MAX_EXPANDED_ENTITIES:
            raise _refuse(
                source,
                "too_large",
                f"block references expand to more than {MAX_EXPANDED_ENTITIES} entities and references",
            )

    def walk(items: Iterable[DXFGraphic], chain: frozenset[str]) -> Iterator[DXFGraphic]:
        for entity in items:
            count(1)
            dxftype = entity.dxftype()
            if dxftype not in _EXPANDED:
                yield entity
            elif dxftype == "MLINE":
                yield from walk(entity.virtual_entities(), chain)  # type: ignore[attr-defined]
            else:
                yield from _expand_insert(entity, chain, walk, count)

    return walk(entities, frozenset())


def _expand_insert(insert: Any, chain: frozenset[str], walk: Any, count: Any) -> Iterator[DXFGraphic]:
    name = str(insert.dxf.name).casefold()
    if name in chain:
        return
    yield from insert.attribs
    grid = max(int(insert.mcount), 1)
    count(grid)  # the references of a MINSERT grid, before the first is placed
    references = insert.multi_insert() if grid > 1 else (insert,)
    for reference in references:
        yield from walk(reference.virtual_entities(), chain | {name})


def _defining_points(primitive: Any) -> Iterable[Any]:
    """The points a primitive is built from (control points for curves, not a flattening)."""
    if primitive.mesh is not None:
        return primitive.mesh.vertices  # type: ignore[no-any-return]
    path = primitive.path
    if path is not None and len(path):
        return path.control_vertices()  # type: ignore[no-any-return]
    return primitive.vertices()  # type: ignore[no-any-return]


def _check_attributes(entity: DXFGraphic, source: str) -> None:
    """Refuse NaN or infinite coordinates and sizes (ezdxf's bounding boxes skip a NaN
    silently, so it has to be found before measuring), and points too large to measure: a
    vertex list's or a spline's points too, before any length is computed from them."""
    from ezdxf.math import Vec3

    locations = []
    for name, value in entity.dxf.all_existing_dxf_attribs().items():
        if isinstance(value, float):
            numbers: Iterable[float] = (value,)
        elif isinstance(value, Vec3):
            numbers = value
            locations.append(value)
        else:
            continue
        if not all(map(math.isfinite, numbers)):
            raise _refuse(source, "non_finite", f"{_describe(entity)} has a non-finite {name}: {value}")
    _check_points([*locations, *_listed_points(entity)], entity, source)


def _listed_points(entity: Any) -> list[Any]:
    """The points an entity lists beside its attributes: a spline's control and fit points, a
    light-weight polyline's vertices (x, y only), a polyline's vertex locations."""
    dxftype = entity.dxftype()
    if dxftype == "SPLINE":
        return [*entity.control_points, *entity.fit_points]
    if dxftype == "LWPOLYLINE":
        return [(x, y) for x, y in entity.get_points("xy")]
    if dxftype == "POLYLINE":
        return [vertex.dxf.location for vertex in entity.vertices]
    return []


def _check_points(points: Iterable[Any], entity: DXFGraphic, source: str) -> None:
    """Refuse a defining point that is not finite, or so large that measuring the curve would
    overflow (a spline's flattening then never finds a chord flat enough, and subdivides for
    ever): the bound of meshes, :data:`~cadmetrics.features.mesh.MAX_COORDINATE`."""
    coordinates = list(itertools.chain.from_iterable(points))
    if not all(map(math.isfinite, coordinates)):
        raise _refuse(source, "non_finite", f"{_describe(entity)} has a NaN or infinite coordinate")
    if coordinates and max(map(abs, coordinates)) > MAX_COORDINATE:
        raise _refuse(
            source,
            "too_large",
            f"{_describe(entity)} has a coordinate beyond {MAX_COORDINATE:g}, "
            "past which its length cannot be measured without overflow",
        )


def _describe(entity: DXFGraphic) -> str:
    handle = entity.dxf.get("handle")
    return f"{entity.dxftype()} #{handle}" if handle else f"{entity.dxftype()} (in a block)"


def _point(vector: Any) -> Point3:
    x, y, z = (float(c) for c in vector)
    return (x, y, z)
