"""STEP and IGES parts made with OpenCASCADE's own modelling and writers, for tests and benchmarks.

Shapes come from OpenCASCADE's primitives and Booleans, so their exact volume, area and
topology are known in closed form; the files are written by OpenCASCADE's STEP and IGES
writers, in the unit asked for. Import this module only where OCP is installed.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

from OCP.BRepAlgoAPI import BRepAlgoAPI_Cut
from OCP.BRepBuilderAPI import BRepBuilderAPI_MakeEdge, BRepBuilderAPI_MakeFace
from OCP.BRepPrimAPI import BRepPrimAPI_MakeBox, BRepPrimAPI_MakeCylinder, BRepPrimAPI_MakeSphere
from OCP.gp import gp_Ax2, gp_Dir, gp_Pln, gp_Pnt
from OCP.IGESControl import IGESControl_Writer
from OCP.Interface import Interface_Static
from OCP.Message import Message
from OCP.OCP.collections import List_TopoDS_Shape as ShapeList
from OCP.STEPControl import STEPControl_AsIs, STEPControl_Writer


def box(dx: float, dy: float, dz: float) -> Any:
    return BRepPrimAPI_MakeBox(dx, dy, dz).Shape()


def cylinder(radius: float, height: float) -> Any:
    return BRepPrimAPI_MakeCylinder(radius, height).Shape()


def sphere(radius: float) -> Any:
    return BRepPrimAPI_MakeSphere(radius).Shape()


def pocketed_box() -> Any:
    """A 40 x 30 x 10 block with a 20 x 10 x 5 pocket cut into its top: the pocket's four walls
    meet its floor at concave edges, and the top at convex ones."""
    block = box(40, 30, 10)
    pocket = BRepPrimAPI_MakeBox(gp_Pnt(10, 10, 5), 20, 10, 10).Shape()
    return BRepAlgoAPI_Cut(block, pocket).Shape()


def drilled_plate(holes: int) -> Any:
    """A plate with ``holes`` x ``holes`` counterbored holes: three faces each (the hole, the
    counterbore and its floor), so 30 x 30 holes make 2,706 faces. One Boolean cut with every
    cutter at once, as OpenCASCADE's general fuse is fastest that way."""
    size = 10.0 * holes + 10.0
    arguments, tools = ShapeList(), ShapeList()
    arguments.Append(box(size, size, 6))
    for row in range(holes):
        for column in range(holes):
            centre_x, centre_y = 10.0 + 10 * row, 10.0 + 10 * column
            radius = 2.0 + 0.5 * ((row + column) % 3)
            through = gp_Ax2(gp_Pnt(centre_x, centre_y, -1), gp_Dir(0, 0, 1))
            tools.Append(BRepPrimAPI_MakeCylinder(through, radius, 8).Shape())
            counterbore = gp_Ax2(gp_Pnt(centre_x, centre_y, 4.5), gp_Dir(0, 0, 1))
            tools.Append(BRepPrimAPI_MakeCylinder(counterbore, radius + 1.5, 2).Shape())
    cut = BRepAlgoAPI_Cut()
    cut.SetArguments(arguments)
    cut.SetTools(tools)
    cut.Build()
    return cut.Shape()


def square_face(side: float) -> Any:
    """One flat face and nothing else: a part with no solid."""
    return BRepBuilderAPI_MakeFace(gp_Pln(gp_Pnt(0, 0, 0), gp_Dir(0, 0, 1)), 0, side, 0, side).Shape()


def lone_edge() -> Any:
    """A straight edge: a shape with no face at all."""
    return BRepBuilderAPI_MakeEdge(gp_Pnt(0, 0, 0), gp_Pnt(1, 0, 0)).Shape()


def step_bytes(shape: Any, unit: str = "MM") -> bytes:
    """``shape`` as a STEP (AP214) file in ``unit`` (OpenCASCADE's names: MM, INCH, M...)."""
    with _Quiet(), tempfile.TemporaryDirectory() as folder:
        Interface_Static.SetCVal_s("write.step.unit", unit)
        try:
            writer = STEPControl_Writer()
            writer.Transfer(shape, STEPControl_AsIs)
            path = Path(folder) / "part.step"
            writer.Write(str(path))
        finally:
            Interface_Static.SetCVal_s("write.step.unit", "MM")
        return path.read_bytes()


def iges_bytes(shape: Any, unit: str = "MM", *, surfaces: bool = False) -> bytes:
    """``shape`` as an IGES file in ``unit``: of B-Rep entities (solids stay solids), or with
    ``surfaces`` of trimmed surfaces only, as most CAD tools write IGES (no solid at all)."""
    with _Quiet(), tempfile.TemporaryDirectory() as folder:
        writer = IGESControl_Writer(unit, 0 if surfaces else 1)
        writer.AddShape(shape)
        writer.ComputeModel()
        path = Path(folder) / "part.igs"
        writer.Write(str(path))
        return path.read_bytes()


class _Quiet:
    """OpenCASCADE's writers print statistics; not into the test output."""

    def __enter__(self) -> None:
        messenger = Message.DefaultMessenger_s()
        self.printers = list(messenger.Printers())
        for printer in self.printers:
            messenger.RemovePrinter(printer)

    def __exit__(self, *_exc: object) -> None:
        messenger = Message.DefaultMessenger_s()
        for printer in self.printers:
            messenger.AddPrinter(printer)


#: Closed forms of the generated parts, for asserting exact measures.
BOX_AREA = 2 * (10 * 20 + 20 * 30 + 10 * 30)
CYLINDER_VOLUME = math.pi * 5**2 * 10
