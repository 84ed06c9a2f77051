"""The reference of every feature layout, rendered from the layouts themselves.

``python -m cadmetrics.features.layout_docs docs/features-layouts.md`` writes it; a test fails
when the file in the repository differs from what the layouts say.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cadmetrics.features.layout import BREP_LAYOUTS, DRAWING_LAYOUTS, LAYOUTS, FeatureLayout
from cadmetrics.features.vector import SIGNIFICANT_DIGITS, FeatureConfig


def render() -> str:
    config = FeatureConfig()
    lines = [
        "# Feature layouts",
        "",
        "Generated from `cadmetrics.features.layout` by `python -m cadmetrics.features.layout_docs "
        "docs/features-layouts.md`; do not edit by hand.",
        "",
        "Each version holds the features of the one before, then its own, in this order. "
        f"Values are rounded to {SIGNIFICANT_DIGITS} significant digits. Default settings: "
        f"`d2_pairs={config.d2_pairs}`, `patch_angle_degrees={config.patch_angle_degrees}`. "
        "Meshes (STL, OBJ, PLY, in-memory, and STEP and IGES parts tessellated), 2D drawings "
        "(DXF) and B-Rep parts (STEP and IGES, with `FeatureExtractor(brep=True)`) have layouts "
        "of their own; an extractor of version vN reads all of them, each into its vN layout. "
        "Size features are in the file's declared length unit unless the host asks for another; "
        "B-Rep sizes are exact (OpenCASCADE's global properties). Drift is reported per "
        "group; a vector store migrating to a version whose features it cannot compute fills in "
        "the default, and marks the record as filled.",
        "",
    ]
    families = (
        ("Meshes", LAYOUTS),
        ("Drawings (DXF)", DRAWING_LAYOUTS),
        ("B-Rep parts (STEP, IGES)", BREP_LAYOUTS),
    )
    for title, layouts in families:
        lines += _family(title, layouts)
    return "\n".join(lines) + "\n"


def _family(title: str, layouts: dict[str, FeatureLayout]) -> list[str]:
    lines = [f"## {title}", "", "| version | dimension | extends |", "|---|---|---|"]
    lines += [
        f"| {layout.version} | {layout.dimension} | {layout.extends or '-'} |" for layout in layouts.values()
    ]
    for layout in layouts.values():
        start = layouts[layout.extends].dimension if layout.extends else 0
        lines += ["", f"### {title}: {layout.version}", ""]
        lines += [
            "| index | feature | group | scales with size | default | meaning |",
            "|---|---|---|---|---|---|",
        ]
        for index, feature in enumerate(layout.features[start:], start=start):
            scaling = "no" if feature.scaling.value == "invariant" else feature.scaling.value
            lines.append(
                f"| {index} | `{feature.name}` | {feature.group} | {scaling} | {feature.default:g} "
                f"| {feature.description} |"
            )
    lines.append("")
    return lines


if __name__ == "__main__":  # pragma: no cover - a maintenance command
    Path(sys.argv[1]).write_text(render(), encoding="utf-8")
