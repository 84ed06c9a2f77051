"""Reading a STEP or IGES file's bytes into a checked :class:`~cadmetrics.features.brep.BRepPart`.

Something must be transferred, and it must have a face; a surface model (IGES as most tools
write it: trimmed surfaces, no solid) is sewn, and its closed shells become solids. Every
failure is a :class:`FeatureInputError` naming the file, with the contract's reason.

A lock makes reading one file at a time: OpenCASCADE's readers are not thread-safe, and
holding the GIL, they would gain nothing from threads anyway.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import tempfile
import threading
from pathlib import Path
from typing import Any, Final

from cadmetrics.features.brep import BREP_FORMATS, BRepPart
from cadmetrics.features.occ import occ_or_missing, quiet
from cadmetrics.features.parsing import input_error
from cadmetrics.features.units import canonical_unit

_STEP_END: Final = re.compile(rb"END-ISO-10303-21;\s*\Z")
_READ_LOCK: Final = threading.Lock()


def read_brep(data: bytes, *, source: str, format: str) -> BRepPart:
    """Read a STEP (``format="step"``) or IGES (``"iges"``) file's bytes into a checked part.

    Raises :class:`MissingDependency` without the ``step`` extra, and
    :class:`FeatureInputError` naming ``source``: ``truncated`` (no end of file mark),
    ``malformed`` (a syntax OpenCASCADE cannot read), ``empty`` (nothing to transfer) or
    ``degenerate`` (a shape with no face: only curves or points).
    """
    if format not in BREP_FORMATS:
        raise ValueError(f"format must be one of {', '.join(BREP_FORMATS)}, not {format!r}")
    occ = occ_or_missing(source, format)
    _check_complete(data, source, format)
    with _READ_LOCK, quiet(occ):
        reader = occ.STEPControl_Reader() if format == "step" else occ.IGESControl_Reader()
        try:
            status = _parse(reader, data, source, format)
        except Exception as exc:  # OpenCASCADE's exceptions, translated by the bindings
            raise input_error(source, format, "malformed", f"OpenCASCADE could not read it ({exc})") from None
        if status != occ.IFSelect_RetDone:
            raise input_error(
                source,
                format,
                "malformed",
                f"is not a {format.upper()} file OpenCASCADE can parse ({status.name})",
            )
        unit = _declared_unit(occ, reader, format)
        if reader.NbRootsForTransfer() == 0:
            raise input_error(source, format, "empty", "holds no shape to transfer (no solid, shell or face)")
        try:
            reader.TransferRoots()
            shape = reader.OneShape()
        except Exception as exc:
            raise input_error(
                source, format, "malformed", f"its shapes could not be transferred ({exc})"
            ) from None
    if shape is None or shape.IsNull():
        raise input_error(source, format, "empty", "no shape was transferred from it")
    part = BRepPart(shape, source=source, format=format, unit=unit)
    if part.topology["solid"] == 0 and part.topology["face"] > 1:
        part = BRepPart(_sewn(occ, shape, part.extents), source=source, format=format, unit=unit)
    if part.topology["face"] == 0:
        raise input_error(
            source,
            format,
            "degenerate",
            f"its shape has no face (only {part.topology['edge']} edges and "
            f"{part.topology['vertex']} vertices)",
        )
    return part


#: Faces of a surface model whose edges lie within this fraction of the part's diagonal of
#: each other are sewn together (0.1 micrometre on a 100 mm part).
SEWING_TOLERANCE: Final = 1e-6


def _sewn(occ: Any, shape: Any, extents: tuple[float, float, float]) -> Any:
    """A surface model (faces and no solid, as IGES files and some STEP exports hold) with its
    faces sewn into shells, and every shell that closes made a solid turned outwards; the
    shape as it was when no shell closes. Its volume is then the solid's, as the part's
    author meant."""
    diagonal = math.sqrt(sum(extent * extent for extent in extents))
    sewing = occ.BRepBuilderAPI_Sewing(max(SEWING_TOLERANCE * diagonal, 1e-9))
    sewing.Add(shape)
    sewing.Perform()
    sewn = sewing.SewedShape()
    builder, compound = occ.BRep_Builder(), occ.TopoDS_Compound()
    builder.MakeCompound(compound)
    solids = 0
    shells = occ.TopExp_Explorer(sewn, occ.TopAbs_SHELL)
    while shells.More():
        shell = occ.TopoDS.Shell(shells.Current())
        shells.Next()
        if occ.BRep_Tool.IsClosed_s(shell):
            solid = occ.BRepBuilderAPI_MakeSolid(shell).Solid()
            occ.BRepLib.OrientClosedSolid_s(solid)
            builder.Add(compound, solid)
            solids += 1
        else:
            builder.Add(compound, shell)
    loose = occ.TopExp_Explorer(sewn, occ.TopAbs_FACE, occ.TopAbs_SHELL)  # faces in no shell
    while loose.More():
        builder.Add(compound, loose.Current())
        loose.Next()
    return compound if solids else shape


def _parse(reader: Any, data: bytes, source: str, format: str) -> Any:
    """The reader's status after parsing ``data``: STEP from memory; IGES, whose reader
    reads only files, from a private temporary copy."""
    if format == "step":
        return reader.ReadStream(source, io.BytesIO(data))
    with tempfile.TemporaryDirectory(prefix="cadmetrics-iges-") as folder:
        path = Path(folder) / "part.igs"
        path.write_bytes(data)
        return reader.ReadFile(str(path))


def _check_complete(data: bytes, source: str, format: str) -> None:
    """A cut file is refused before parsing: features of part of a part are silently wrong."""
    if format == "step":
        if b"DATA;" not in data:
            raise input_error(source, format, "malformed", "has no DATA section")
        if not _STEP_END.search(data[-4096:]):
            raise input_error(
                source, format, "truncated", f"ends after {len(data)} bytes without END-ISO-10303-21;"
            )
        return
    lines = data.rstrip().splitlines()
    last = lines[-1] if lines else b""
    if len(last) < 73 or last[72:73] != b"T":
        raise input_error(
            source, format, "truncated", f"ends after {len(data)} bytes without its terminate (T) section"
        )


def _declared_unit(occ: Any, reader: Any, format: str) -> str | None:
    """The file's length unit as a canonical short name, or None when it declares none we
    know. STEP: the first length unit of its representation contexts; IGES: its global
    section's unit flag (name)."""
    try:
        if format == "step":
            lengths, angles, solid_angles = occ.AsciiStrings(), occ.AsciiStrings(), occ.AsciiStrings()
            reader.FileUnits(lengths, angles, solid_angles)
            names = [lengths.Value(i).ToCString() for i in range(1, lengths.Length() + 1)]
        else:
            names = [reader.IGESModel().GlobalSection().UnitName().ToCString()]
    except Exception:
        return None
    for name in names:
        with contextlib.suppress(ValueError):
            return canonical_unit(name)
    return None
