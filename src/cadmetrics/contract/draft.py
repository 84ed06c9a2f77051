"""Writing a drafted contract as YAML a person reviews: every guess beside what it guessed.

PyYAML writes no comments, so the layout is written here, line by line, in the format's own
order (name, type, unit, help, provided_by, labels, buckets), and PyYAML only quotes scalars.
The text is a contract file as it stands: it loads and lints clean, and the same draft always
gives the same text.
"""

from __future__ import annotations

import yaml

from cadmetrics.contract.infer import Draft, DraftMetric
from cadmetrics.contract.model import DEFAULT_OPEN_LABEL_CAP, MetricType, Unit

#: Column the ``# guess:`` comments start at, so that they read as a column beside the values.
_COMMENT_COLUMN = 44


def render_draft(draft: Draft) -> str:
    """The YAML text of ``draft``."""
    lines = _header(draft)
    if len(draft.namespaces) == 1:
        lines.append(f"namespace: {draft.namespaces[0]}")
    elif draft.namespaces:
        lines.append(f"namespaces: [{', '.join(draft.namespaces)}]")
    else:
        lines.append("namespaces: [draft]  # no application metric was found")
    lines.append(f"version: {draft.version}")
    if not draft.metrics:
        lines.append("metrics: []")
        return "\n".join(lines) + "\n"
    lines.append("metrics:")
    for metric in draft.metrics:
        lines.extend(_metric(metric))
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def _header(draft: Draft) -> list[str]:
    origins = ", ".join(draft.origins) or "no source"
    lines = [f"# Drafted by `cadmetrics contract infer` from {origins}."]
    if draft.update_of is not None:
        lines += [
            f"# Additions to {draft.update_of}: the metrics it does not declare yet. Append them to its",
            "# metrics (and any namespace below to its namespaces).",
        ]
    lines += [
        "# Each 'guess:' comment marks what was inferred rather than read: review it, then delete it.",
    ]
    if draft.changes:
        lines.append("#")
        lines.append(
            "# Declared metrics whose exported data their declaration does not admit (edit by hand):"
        )
        lines += [f"#   {name}: {change}" for name, change in draft.changes]
    if draft.skipped:
        lines.append("#")
        lines.append("# Not declared:")
        lines += [f"#   {name}: {why}" for name, why in draft.skipped]
    if draft.notes:
        lines.append("#")
        lines += [f"# Note: {note}" for note in draft.notes]
    lines.append("")
    return lines


def _metric(metric: DraftMetric) -> list[str]:
    spec = metric.spec
    notes = metric.notes
    lines = [
        _line(f"  - name: {spec.name}", None),
        _line(f"    type: {spec.type}", notes.get("type")),
    ]
    if spec.unit is not Unit.NONE or "unit" in notes:
        lines.append(_line(f"    unit: {spec.unit}", notes.get("unit")))
    lines.append(_line(f"    help: {_scalar(spec.help)}", notes.get("help")))
    if spec.provided_by is not None:
        lines.append(_line(f"    provided_by: {_scalar(spec.provided_by)}", notes.get("provided_by")))
    if spec.labels:
        lines.append(_line("    labels:", notes.get("labels")))
        for label in spec.labels:
            if label.values is not None:
                value = "{values: [" + ", ".join(_scalar(v) for v in label.values) + "]}"
            elif label.max_values == DEFAULT_OPEN_LABEL_CAP:
                value = "open"
            else:
                value = f"{{open: true, max_values: {label.max_values}}}"
            lines.append(_line(f"      {label.name}: {value}", notes.get(f"label:{label.name}")))
    elif "labels" in notes:
        lines.append(_line("    labels: {}", notes["labels"]))
    if spec.type is MetricType.HISTOGRAM:
        if metric.default_buckets:
            lines.append(_line("    # buckets: (default)", notes.get("buckets")))
        else:
            lines.append(_line(f"    buckets: [{', '.join(_number(b) for b in spec.buckets or ())}]", None))
    return lines


def _line(text: str, note: str | None) -> str:
    if note is None:
        return text
    return f"{text.ljust(_COMMENT_COLUMN - 1)} # guess: {note}"


def _scalar(value: str) -> str:
    """``value`` as a YAML scalar on one line: plain where it reads back as itself, quoted (by
    PyYAML, which knows every case) where not."""
    multiline = any(char in value for char in "\n\r\t\x85\u2028\u2029")
    text = yaml.safe_dump(
        value,
        default_style='"' if multiline else None,  # escaped, never folded over several lines
        default_flow_style=True,
        width=1_000_000,
        allow_unicode=True,
    )
    return text.removesuffix("\n").removesuffix("\n...").strip()


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
