"""Recording and alerting rules, checked together.

The recording rules of every checked file define series of their own: a query (or another rule)
may select them like any contract metric. Their label sets are computed from their expressions,
in dependency order and whatever the order of the files, plus the rule's (and group's)
``labels:``. A name recorded by several rules carries the label sets of all of them. A cycle of
recording rules, or a recorded expression built on metrics outside the contract, gives a series
of unknown labels, about which nothing further is judged.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from cadmetrics.check.catalog import DEFAULT_SCRAPE_LABELS, Catalog, Series, SeriesType
from cadmetrics.check.expression import Checked, check_text
from cadmetrics.check.findings import RECORD_SHADOWS_CONTRACT, Finding, make_finding
from cadmetrics.check.labels import Kind, LabelSet, Value, merge_domains, unknown
from cadmetrics.check.limits import DEFAULT_LIMITS, Limits
from cadmetrics.check.rulefiles import Rule, RuleFile, iter_rules
from cadmetrics.contract.model import Contract


class RuleSet:
    """The rules of several files, their recorded series and their findings."""

    def __init__(
        self,
        files: Sequence[RuleFile],
        contract: Contract,
        *,
        scrape_labels: Iterable[str] = DEFAULT_SCRAPE_LABELS,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self.files = tuple(files)
        self.limits = limits
        self.rules = list(iter_rules(list(files)))
        self.records: dict[str, list[int]] = {}
        for index, rule in enumerate(self.rules):
            if rule.kind == "record":
                self.records.setdefault(rule.name, []).append(index)
        self.catalog = Catalog(
            contract, scrape_labels=scrape_labels, recorded=self.recorded, recorded_names=list(self.records)
        )
        self._checked: dict[int, Checked] = {}
        self._series: dict[str, Series] = {}
        self._in_progress: set[str] = set()

    def checked(self, index: int) -> Checked:
        """The findings and value of rule ``index`` (each rule is checked once)."""
        done = self._checked.get(index)
        if done is None:
            rule = self.rules[index]
            done = check_text(
                rule.expr, self.catalog, rule.place, alert=rule.kind == "alert", limits=self.limits
            )
            self._checked[index] = done
        return done

    def recorded(self, name: str) -> Series | None:
        """The series recorded as ``name`` by the checked rules, or ``None``."""
        indexes = self.records.get(name)
        if indexes is None:
            return None
        series = self._series.get(name)
        if series is not None:
            return series
        if name in self._in_progress:  # a rule that depends on itself, directly or not
            return Series(name, unknown(sources=(name,)), SeriesType.UNKNOWN, f"the recorded series {name}")
        self._in_progress.add(name)
        try:
            values = [_recorded_value(self.rules[index], self.checked(index).value) for index in indexes]
        finally:
            self._in_progress.discard(name)
        if any(value.shapes is None for value in values):
            value = unknown(sources=(name,))
        else:
            merged = Value(Kind.INSTANT, tuple(shape for value in values for shape in value.shapes or ()))
            value = merged.with_shapes(merged.shapes)
            value = Value(Kind.INSTANT, value.shapes, merge_domains(*values), (name,))
        series = Series(name, value, SeriesType.UNKNOWN, f"the recorded series {name}")
        self._series[name] = series
        return series

    def findings(self) -> list[Finding]:
        """Every finding: file structure problems, then each rule's, in file and line order."""
        found: list[Finding] = [problem for rule_file in self.files for problem in rule_file.problems]
        for index, rule in enumerate(self.rules):
            if rule.kind == "record" and self.catalog.contract_series(rule.name) is not None:
                found.append(
                    make_finding(
                        RECORD_SHADOWS_CONTRACT,
                        f"the recording rule writes {rule.name}, which is a series of the contract's "
                        "metrics (or of Prometheus itself): the two would mix in one series",
                        rule.place,
                        rule.name,
                    )
                )
            found.extend(self.checked(index).findings)
        order = {rule_file.path: position for position, rule_file in enumerate(self.files)}
        return sorted(found, key=lambda finding: (order.get(finding.path, 0), finding.line))


def _recorded_value(rule: Rule, value: Value | None) -> Value:
    """The series a recording rule writes: its expression's labels plus its ``labels:``."""
    if value is None or (value.is_vector and value.shapes is None):
        return unknown(sources=(rule.name,))
    shapes = value.shapes if value.is_vector and value.shapes is not None else (LabelSet(frozenset()),)
    where = f" (in the recording rule {rule.name})"
    added = frozenset(rule.labels)
    annotated = tuple(
        LabelSet(
            shape.names | added,
            tuple((label, by + where) for label, by in shape.dropped if label not in added),
        )
        for shape in shapes
    )
    domains = {label: values for label, values in value.domains.items() if label not in added}
    domains.update({label: frozenset({text}) for label, text in rule.labels.items() if "{{" not in text})
    return Value(Kind.INSTANT, annotated, domains, (rule.name,))
