"""The OpenCASCADE bindings (OCP, the optional ``step`` extra), imported once, as one namespace
of the names the B-Rep modules use; and its messenger kept quiet while a file is read.

OpenCASCADE reports through a process-wide messenger that prints to standard output; its
printers are detached for the time of a read (and put back after), so that a broken file does
not write into a host's output.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import types
from collections.abc import Iterator
from typing import Any, Final

from cadmetrics.errors import MissingDependency

EXTRA_HINT: Final = "pip install cadmetrics[step]"


@contextlib.contextmanager
def quiet(occ: Any) -> Iterator[None]:
    """OpenCASCADE's messenger without its printers, for the time of the block."""
    messenger = occ.Message.DefaultMessenger_s()
    printers = list(messenger.Printers())
    for printer in printers:
        messenger.RemovePrinter(printer)
    try:
        yield
    finally:
        for printer in printers:
            messenger.AddPrinter(printer)


def occ_or_missing(source: str, format: str) -> Any:
    try:
        return occ_namespace()
    except ImportError:
        raise MissingDependency(
            f"{source}: reading {format.upper()} parts needs OpenCASCADE: {EXTRA_HINT}", format=format
        ) from None


#: The OpenCASCADE names the B-Rep modules use, by module of the OCP bindings (and the name used here).
_OCC_NAMES: Final = {
    "OCP.BRep": ("BRep_Builder", "BRep_Tool"),
    "OCP.BRepBuilderAPI": ("BRepBuilderAPI_MakeSolid", "BRepBuilderAPI_Sewing"),
    "OCP.BRepLib": ("BRepLib",),
    "OCP.BRepAdaptor": ("BRepAdaptor_Curve", "BRepAdaptor_Curve2d", "BRepAdaptor_Surface"),
    "OCP.BRepBndLib": ("BRepBndLib",),
    "OCP.BRepGProp": ("BRepGProp",),
    "OCP.BRepMesh": ("BRepMesh_IncrementalMesh",),
    "OCP.Bnd": ("Bnd_Box",),
    "OCP.GProp": ("GProp_GProps",),
    "OCP.gp": ("gp_Identity", "gp_Pnt", "gp_Vec"),
    "OCP.IFSelect": ("IFSelect_RetDone",),
    "OCP.IGESControl": ("IGESControl_Reader",),
    "OCP.Message": ("Message",),
    "OCP.STEPControl": ("STEPControl_Reader",),
    "OCP.TopAbs": (
        "TopAbs_EDGE",
        "TopAbs_FACE",
        "TopAbs_REVERSED",
        "TopAbs_SHELL",
        "TopAbs_SOLID",
        "TopAbs_VERTEX",
    ),
    "OCP.TopExp": ("TopExp", "TopExp_Explorer"),
    "OCP.TopLoc": ("TopLoc_Location",),
    "OCP.TopoDS": ("TopoDS", "TopoDS_Compound"),
}
_OCC_COLLECTIONS: Final = {
    "IndexedMap": "IndexedMap_TopoDS_Shape_TopTools_ShapeMapHasher",
    "AsciiStrings": "Sequence_TCollection_AsciiString",
}


@functools.cache
def occ_namespace() -> Any:
    """The OpenCASCADE names the B-Rep modules use, imported once (the bindings take a second),
    as attributes of one namespace."""
    names: dict[str, Any] = {}
    for module_name, members in _OCC_NAMES.items():
        module = importlib.import_module(module_name)
        names.update({member: getattr(module, member) for member in members})
    collections = importlib.import_module("OCP.OCP.collections")
    names.update({alias: getattr(collections, name) for alias, name in _OCC_COLLECTIONS.items()})
    return types.SimpleNamespace(**names)
