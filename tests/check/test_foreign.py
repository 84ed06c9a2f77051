"""Public dashboards and rules written by others, about other metrics (see foreign/README.md):
each of their metrics is reported once per query as not in the contract, with its panel or
rule, and nothing else is made up about them."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from cadmetrics.check import Finding, check_dashboards, check_rules
from tests.check.support import CONTRACT

pytest.importorskip("promql_parser", reason="the checker needs the check extra (promql-parser)")

FOREIGN = Path(__file__).parent / "foreign"
DASHBOARD = FOREIGN / "k8s-system-coredns.json"
RULES = FOREIGN / "nodeExporter-prometheusRule.yaml"


def metric_of(finding: Finding) -> str:
    match = re.match(
        r"metric (\S+) is not in the contract \(it lies outside the contract's namespaces", finding.message
    )
    assert match, finding.message
    return match.group(1)


def test_a_foreign_dashboard_gives_precise_not_in_contract_findings() -> None:
    found = check_dashboards([DASHBOARD], CONTRACT, scrape_labels=("job", "instance", "cluster"))
    assert {finding.code for finding in found} == {"CK002"}
    located = {(finding.location, metric_of(finding)) for finding in found}
    assert len(located) == len(found)  # one finding per metric and query
    title = "Kubernetes / System / CoreDNS"
    assert (f"{title} > CoreDNS - CPU Usage by instance > A", "process_cpu_seconds_total") in located
    assert (f"{title} > CoreDNS - Cache Hits / Misses > B", "coredns_cache_misses_total") in located
    assert (
        f"{title} > CoreDNS - DNS request duration > A",
        "coredns_dns_request_duration_seconds_bucket",
    ) in located
    assert (f"{title} > variable cluster", "kube_node_info") in located
    assert {metric for _, metric in located} == {
        "coredns_build_info",
        "coredns_cache_entries",
        "coredns_cache_hits_total",
        "coredns_cache_misses_total",
        "coredns_dns_request_duration_seconds_bucket",
        "coredns_dns_request_size_bytes_bucket",
        "coredns_dns_request_size_bytes_count",
        "coredns_dns_request_size_bytes_sum",
        "coredns_dns_requests_total",
        "coredns_dns_response_size_bytes_bucket",
        "coredns_dns_responses_total",
        "coredns_proxy_request_duration_seconds_count",
        "kube_node_info",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
    }
    assert all(finding.line > 0 for finding in found if "variable" not in finding.location)


def test_up_carries_only_the_scrape_labels_given() -> None:
    """``up`` is Prometheus's own series with the target labels: with the default job and
    instance, the dashboard's cluster matcher on it can never match."""
    found = [f for f in check_dashboards([DASHBOARD], CONTRACT) if f.code != "CK002"]
    assert [(f.code, f.location) for f in found] == [
        ("CK004", "Kubernetes / System / CoreDNS > CoreDNS - Health Status > A"),
        ("CK004", "Kubernetes / System / CoreDNS > variable instance"),
    ]
    assert all("up has no label cluster" in f.message for f in found)


def test_foreign_rules_give_precise_not_in_contract_findings() -> None:
    found = check_rules([RULES], CONTRACT)
    assert {finding.code for finding in found} == {"CK002"}
    per_rule = Counter((finding.location, finding.line, metric_of(finding)) for finding in found)
    assert max(per_rule.values()) == 1  # a metric used twice in one rule is reported once
    assert (
        "node-exporter > alert NodeFilesystemSpaceFillingUp",
        17,
        "node_filesystem_avail_bytes",
    ) in per_rule
    assert (
        "node-exporter > alert NodeNetworkReceiveErrs",
        137,
        "node_network_receive_errs_total",
    ) in per_rule
    assert (
        "node-exporter.rules > record instance:node_load1_per_cpu:ratio",
        351,
        "node_load1",
    ) in per_rule
    # the rule's other operand is recorded by the same file: known, so not reported
    assert not any("instance:node_num_cpu:sum" in finding.message for finding in found)
    assert len({metric for _, _, metric in per_rule}) == 38
    assert all(metric.startswith("node_") for _, _, metric in per_rule)


def test_every_foreign_expression_parses() -> None:
    found = check_rules([RULES], CONTRACT) + check_dashboards([DASHBOARD], CONTRACT)
    assert not [finding for finding in found if finding.code in ("CK001", "CK013", "CK014")]
