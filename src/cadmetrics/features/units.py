"""Length units: the names files declare them by, and converting size features between them.

A STEP file declares its length unit (``INCH``, ``millimetre``), an IGES file its unit flag, a
DXF its ``$INSUNITS``; STL, OBJ and PLY declare none. A vector keeps the unit of its size
features, the file's own by default, so that two exports of one part (one in inches, one in
millimetres) can be compared once converted. Only the features a layout marks as scaling with
size change: lengths by the factor, areas by its square, volumes by its cube.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from cadmetrics.features.layout import FeatureLayout, Scaling
from cadmetrics.features.mesh import FloatArray

__all__ = ["LENGTH_UNITS", "canonical_unit", "convert_sizes", "millimetres_per"]

#: Each unit by its short name, with its length in millimetres (exact by definition).
LENGTH_UNITS: Final[dict[str, float]] = {
    "nm": 1e-6,
    "um": 1e-3,
    "mm": 1.0,
    "cm": 10.0,
    "dm": 100.0,
    "m": 1000.0,
    "km": 1e6,
    "uin": 2.54e-5,
    "mil": 0.0254,
    "in": 25.4,
    "ft": 304.8,
    "yd": 914.4,
    "mi": 1_609_344.0,
}

#: The other spellings files and people use, lower case.
_ALIASES: Final = {
    "nanometre": "nm", "nanometer": "nm",
    "micrometre": "um", "micrometer": "um", "micron": "um", "microns": "um", "µm": "um",
    "millimetre": "mm", "millimeter": "mm", "millimetres": "mm", "millimeters": "mm",
    "centimetre": "cm", "centimeter": "cm",
    "decimetre": "dm", "decimeter": "dm",
    "metre": "m", "meter": "m", "metres": "m", "meters": "m",
    "kilometre": "km", "kilometer": "km",
    "microinch": "uin", "microinches": "uin",
    "thou": "mil", "mils": "mil",
    "inch": "in", "inches": "in",
    "foot": "ft", "feet": "ft",
    "yard": "yd", "yards": "yd",
    "mile": "mi", "miles": "mi",
}  # fmt: skip


def canonical_unit(name: str) -> str:
    """The short name of unit ``name`` (``"INCH"`` -> ``"in"``), or ValueError listing them."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in LENGTH_UNITS:
        raise ValueError(f"unknown length unit {name!r}: use one of {', '.join(LENGTH_UNITS)}")
    return key


def millimetres_per(unit: str) -> float:
    """How many millimetres one ``unit`` is."""
    return LENGTH_UNITS[canonical_unit(unit)]


def convert_sizes(values: FloatArray, layout: FeatureLayout, factor: float) -> FloatArray:
    """``values`` of ``layout`` with every size feature multiplied by ``factor`` to its power
    (lengths, areas, volumes); the rest unchanged. The caller rounds the result."""
    powers = {Scaling.LENGTH: 1, Scaling.AREA: 2, Scaling.VOLUME: 3}
    scale = np.array([factor ** powers.get(feature.scaling, 0) for feature in layout], dtype=np.float64)
    converted: FloatArray = values * scale
    return converted
