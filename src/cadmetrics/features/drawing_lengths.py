"""Lengths of drawn DXF curves: exact for lines, circles, arcs and bulged polylines, within
:data:`CURVE_TOLERANCE` of the curve's size for splines and ellipses (relative, so that a
scaled drawing gives scaled lengths)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Final

import numpy as np

#: SPLINE and ELLIPSE lengths are measured on a polyline whose chords stay within this
#: fraction of the curve's size: relative, so that a scaled drawing gives scaled lengths.
CURVE_TOLERANCE: Final = 1e-6


def curve_length(entity: Any) -> float:
    """The length of one curve: exact for lines, arcs and bulged polylines, within
    :data:`CURVE_TOLERANCE` of the curve's size for splines and ellipses."""
    dxftype = entity.dxftype()
    if dxftype == "LINE":
        return float(math.dist(entity.dxf.start, entity.dxf.end))
    if dxftype == "CIRCLE":
        return 2.0 * math.pi * abs(float(entity.dxf.radius))
    if dxftype == "ARC":
        from ezdxf.math import arc_angle_span_deg

        span = arc_angle_span_deg(entity.dxf.start_angle, entity.dxf.end_angle)
        return abs(float(entity.dxf.radius)) * math.radians(span)
    if dxftype == "LWPOLYLINE":
        rows = [(x, y, 0.0, bulge) for x, y, bulge in entity.get_points("xyb")]
        return _polyline_length(rows, entity.closed)
    if dxftype == "POLYLINE":
        if not (entity.is_2d_polyline or entity.is_3d_polyline):
            return 0.0  # polyface and polygon meshes are surfaces, not lines
        bulged = entity.is_2d_polyline
        rows = [
            (*vertex.dxf.location, vertex.dxf.bulge if bulged else 0.0)
            for vertex in entity.vertices
            if not vertex.dxf.flags & 16  # the frame of a spline-fit polyline is not drawn
        ]
        return _polyline_length(rows, entity.is_closed)
    if dxftype == "ELLIPSE":
        size = 2.0 * entity.dxf.major_axis.magnitude
        if size == 0.0:
            return 0.0
        return _chain_length(entity.flattening(curve_tolerance(size, entity.dxf.center)))
    # SPLINE
    defining = list(entity.control_points) or list(entity.fit_points)
    if len(defining) < 2:
        return 0.0
    corners = np.array(defining, dtype=np.float64)
    size = float(np.linalg.norm(corners.max(axis=0) - corners.min(axis=0)))
    if size == 0.0:
        return 0.0
    return _chain_length(entity.flattening(curve_tolerance(size, corners[0])))


def curve_tolerance(size: float, anchor: Iterable[float]) -> float:
    """The flattening tolerance for a curve of ``size`` placed near ``anchor``."""
    # Not below 1e-12 of the coordinates' magnitude: chords shorter than float precision
    # at that position cannot be made, and ezdxf would subdivide until it gave up.
    magnitude = max((abs(c) for c in anchor), default=0.0)
    return max(CURVE_TOLERANCE * size, 1e-12 * magnitude)


def _chain_length(points: Iterable[Any]) -> float:
    chain = np.array([tuple(point) for point in points], dtype=np.float64).reshape(-1, 3)
    if len(chain) < 2:
        return 0.0
    return math.fsum(np.linalg.norm(np.diff(chain, axis=0), axis=1).tolist())


def _polyline_length(rows: list[tuple[float, float, float, float]], closed: bool) -> float:
    """Straight segments by their chord, bulged ones as the arc the bulge describes:
    a bulge ``b`` is ``tan(angle / 4)``, and the arc is ``chord * angle / (2 sin(angle / 2))``."""
    if len(rows) < 2:
        return 0.0
    table = np.array(rows, dtype=np.float64)
    points, bulges = table[:, :3], table[:, 3]
    ends = np.roll(points, -1, axis=0) if closed else points[1:]
    if not closed:
        points, bulges = points[:-1], bulges[:-1]
    chords = np.linalg.norm(ends - points, axis=1)
    angles = 4.0 * np.arctan(np.abs(bulges))
    with np.errstate(invalid="ignore", divide="ignore"):
        arcs = chords * angles / (2.0 * np.sin(angles / 2.0))
    return math.fsum(np.where(angles == 0.0, chords, arcs).tolist())
