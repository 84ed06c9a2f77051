"""``Mesh``: the triangle mesh every format is read into, checked once on the way in.

Vertices are float64 ``(n, 3)`` and faces int64 ``(m, 3)`` vertex indices, both read-only, so
that a mesh can be shared between threads and cached without copies. Checks that every
feature relies on (finite coordinates, indices in range, at least one face with area) are
made here, once, with errors that say what is wrong where.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from cadmetrics.errors import FeatureInputError

FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.int64]


#: The largest coordinate magnitude a mesh may have. Volume integrals take fifth powers of
#: coordinates (1e60 gives 1e300, under the largest double's 1.8e308); beyond it features would
#: overflow to infinity. Every float32 (STL) coordinate is far below it.
MAX_COORDINATE = 1e60

#: Where a mesh can come from; also the ``format`` label of the feature metrics.
MESH_FORMATS = ("stl", "obj", "ply", "step", "iges", "mesh")


@attrs.frozen(eq=False)
class Mesh:
    """A triangle mesh. Build it with :meth:`from_arrays`, which checks and normalises."""

    vertices: FloatArray
    faces: IndexArray
    source: str = "<mesh>"
    format: str = "mesh"  # read from: stl, obj, ply, step or iges (tessellated), or mesh (in memory)

    @classmethod
    def from_arrays(cls, vertices: Any, faces: Any, *, source: str = "<mesh>", format: str = "mesh") -> Mesh:
        """Check and freeze ``vertices`` ``(n, 3)`` and ``faces`` ``(m, 3)``.

        Raises :class:`FeatureInputError` (``empty``, ``malformed``, ``non_finite``,
        ``too_large`` for a coordinate beyond :data:`MAX_COORDINATE`, or ``degenerate``)
        naming ``source``. Faces with a repeated vertex are kept (they add no
        area); a mesh whose faces all have zero area has no shape to describe and is refused.
        """

        if format not in MESH_FORMATS:
            raise ValueError(f"format must be one of {', '.join(MESH_FORMATS)}, not {format!r}")

        def refuse(reason: str, problem: str) -> FeatureInputError:
            return FeatureInputError(f"{source}: {problem}", reason=reason, format=format)

        try:
            points = np.array(vertices, dtype=np.float64, order="C")
            triangles = np.array(faces, dtype=np.int64, order="C")
        except (TypeError, ValueError, OverflowError) as exc:
            raise refuse("malformed", f"vertices and faces must be numeric arrays ({exc})") from None
        if points.size == 0 or triangles.size == 0:
            raise refuse("empty", f"no geometry ({len(points)} vertices, {len(triangles)} faces)")
        if points.ndim != 2 or points.shape[1] != 3:
            raise refuse("malformed", f"vertices must have shape (n, 3), not {points.shape}")
        if triangles.ndim != 2 or triangles.shape[1] != 3:
            raise refuse("malformed", f"faces must have shape (m, 3), not {triangles.shape}")
        finite = np.isfinite(points).all(axis=1)
        if not finite.all():
            first = int(np.argmin(finite))
            raise refuse("non_finite", f"vertex {first} has a NaN or infinite coordinate: {points[first]}")
        if max(float(points.max()), -float(points.min())) > MAX_COORDINATE:  # no temporary array
            magnitudes = np.abs(points).max(axis=1)
            first = int(np.argmax(magnitudes > MAX_COORDINATE))
            raise refuse(
                "too_large",
                f"vertex {first} has a coordinate of magnitude {magnitudes[first]:.3g}, beyond the "
                f"{MAX_COORDINATE:g} up to which features can be computed without overflow",
            )
        out_of_range = (triangles < 0) | (triangles >= len(points))
        if out_of_range.any():
            face = int(np.argmax(out_of_range.any(axis=1)))
            raise refuse(
                "malformed", f"face {face} refers to vertex {triangles[face].tolist()} of {len(points)}"
            )
        if not _any_face_has_area(points, triangles):
            raise refuse("degenerate", f"all {len(triangles)} faces have zero area")
        points.flags.writeable = False
        triangles.flags.writeable = False
        return cls(points, triangles, source, format)

    @property
    def triangles(self) -> FloatArray:
        """The corner coordinates of every face, ``(m, 3, 3)``."""
        return self.vertices[self.faces]


def _any_face_has_area(points: FloatArray, triangles: IndexArray, block: int = 4096) -> bool:
    """Whether some face has area: looked for block by block, as almost always the first
    block answers (a full pass over a million faces costs more than the rest of the check)."""
    for start in range(0, len(triangles), block):
        corners = points[triangles[start : start + block]]
        cross = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
        if (cross != 0).any():
            return True
    return False
