"""The metrics reference is generated, complete, and committed fresh."""

from __future__ import annotations

from pathlib import Path

from cadmetrics.contract.docs import render_markdown
from cadmetrics.contract.model import Contract

ROOT = Path(__file__).resolve().parents[2]


def test_every_metric_and_label_is_documented(library_contract: Contract) -> None:
    text = render_markdown(library_contract)
    for spec in library_contract:
        assert f"### {spec.name}\n" in text
        assert spec.help in text
        for label in spec.labels:
            assert f"`{label.name}`" in text


def test_docs_metrics_md_is_not_stale(library_contract: Contract) -> None:
    committed = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    assert committed == render_markdown(library_contract), (
        "docs/metrics.md is stale: run `cadmetrics contract docs --output docs/metrics.md`"
    )
