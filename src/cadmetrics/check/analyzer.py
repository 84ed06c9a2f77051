"""The semantics of one PromQL expression, judged against the contract.

Every sub-expression gets its kind (instant vector, range vector, scalar, string) and the label
sets its series can carry (see :mod:`cadmetrics.check.labels`), bottom up, the way Prometheus's
engine computes them. On the way the analyzer reports what can be known without a server:
unknown metrics and suffixes, matchers on labels a series does not carry or with values it
never takes, counters used without a rate and rates over gauges, grouping and matching labels
an operand lacks, ``histogram_quantile`` without ``le``, and binary operations whose sides can
never be matched. A metric outside the contract has unknown labels: nothing further is judged
about what is built on it, so one foreign metric gives one finding.

This module imports the PromQL parser's types, so it is imported only once
:func:`cadmetrics.check.promql.promql` has confirmed that the parser is installed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import attrs
import promql_parser as pp

from cadmetrics.check.catalog import Catalog, Series, SeriesType
from cadmetrics.check.findings import (
    BARE_COUNTER,
    DEPRECATED_METRIC,
    DROPPED_LABEL,
    GROUPING_LABEL,
    LABEL_VALUE,
    QUANTILE_WITHOUT_LE,
    RATE_OF_GAUGE,
    UNKNOWN_LABEL,
    Check,
    Finding,
    Place,
    make_finding,
)
from cadmetrics.check.labels import (
    Kind,
    LabelSet,
    Usage,
    Value,
    scalar,
    unknown,
)
from cadmetrics.check.matching import SET_OPERATORS, VectorMatching
from cadmetrics.check.placeholders import holds_placeholder
from cadmetrics.check.promql import excerpt
from cadmetrics.check.values import MATCH_OPS, bucket_problem, closed_set_problem
from cadmetrics.contract.lint import Severity
from cadmetrics.contract.model import Stability

COMPARISONS = frozenset({"==", "!=", ">", "<", ">=", "<="})

#: Functions that read a counter correctly (they detect resets).
COUNTER_FUNCTIONS = frozenset({"rate", "irate", "increase", "resets", "changes"})
#: Of those, the ones that make no sense over a gauge.
RATE_FUNCTIONS = frozenset({"rate", "irate", "increase"})
#: Functions that look only at which series (or samples) exist, not at their values.
EXISTENCE_FUNCTIONS = frozenset(
    {"absent", "absent_over_time", "count_over_time", "present_over_time", "timestamp"}
)
#: Functions that hand their operand's samples on unchanged (only labels or order change).
PASS_THROUGH_FUNCTIONS = frozenset(
    {"label_replace", "label_join", "sort", "sort_desc", "sort_by_label", "sort_by_label_desc"}
)
#: Aggregations whose result depends only on which series exist.
EXISTENCE_AGGREGATIONS = frozenset({"count", "group"})
#: Aggregations that select series and keep their labels.
SELECTING_AGGREGATIONS = frozenset({"topk", "bottomk", "limitk", "limit_ratio"})
PASS_THROUGH_AGGREGATIONS = frozenset({"limitk", "limit_ratio"})

#: Regexes of label_replace that match every value of a label that is present.
_MATCH_ALL = frozenset({".*", "(.*)", "^.*$", "^(.*)$"})
_MATCH_NON_EMPTY = frozenset({".+", "(.+)", "^.+$", "^(.+)$"})


@attrs.frozen
class Use:
    """How the enclosing operation uses an operand's samples, and which operation that is."""

    usage: Usage
    by: str = ""


TOP = Use(Usage.VALUE)


class Analyzer:
    """Evaluates expressions against a catalog and collects findings for one place."""

    def __init__(self, catalog: Catalog, place: Place) -> None:
        self.catalog = catalog
        self.place = place
        self.findings: list[Finding] = []
        self._seen: set[tuple[str, str]] = set()

    def evaluate(self, node: pp.Expr, use: Use = TOP) -> Value:
        return self._eval(node, use)

    # -- reporting ---------------------------------------------------------------------------

    def report(self, check: Check, message: str, node: object, severity: Severity | None = None) -> None:
        key = (check.code, message)
        if key in self._seen:
            return
        self._seen.add(key)
        self.findings.append(make_finding(check, message, self.place, excerpt(node), severity))

    def require(
        self, value: Value, label: str, what: str, node: object, check: Check = GROUPING_LABEL
    ) -> bool:
        """Report when ``value`` can never carry ``label``, which ``what`` uses."""
        if value.shapes is None or label == "__name__" or holds_placeholder(label):
            return True
        if value.has_anywhere(label):
            return True
        dropped = value.dropped_by(label)
        if dropped is not None:
            self.report(
                DROPPED_LABEL,
                f"{what} uses label {label}, but {dropped} already removed it "
                f"(what remains: {value.describe_labels()})",
                node,
            )
        else:
            self.report(
                check,
                f"{what} uses label {label}, which {value.source_text()} never carries "
                f"(labels: {value.describe_labels()})",
                node,
            )
        return False

    # -- dispatch ------------------------------------------------------------------------------

    def _eval(self, node: pp.Expr, use: Use) -> Value:
        if isinstance(node, pp.ParenExpr):
            return self._eval(node.expr, use)
        if isinstance(node, pp.NumberLiteral):
            return scalar()
        if isinstance(node, pp.StringLiteral):
            return Value(Kind.STRING)
        if isinstance(node, pp.UnaryExpr):
            return self._eval(node.expr, Use(Usage.VALUE, "unary minus"))
        if isinstance(node, pp.VectorSelector):
            return self._selector(node, use, node)
        if isinstance(node, pp.MatrixSelector):
            return attrs.evolve(self._selector(node.vector_selector, use, node), kind=Kind.RANGE)
        if isinstance(node, pp.SubqueryExpr):
            return attrs.evolve(self._eval(node.expr, use), kind=Kind.RANGE)
        if isinstance(node, pp.Call):
            return self._call(node, use)
        if isinstance(node, pp.AggregateExpr):
            return self._aggregate(node, use)
        if isinstance(node, pp.BinaryExpr):
            return self._binary(node, use)
        return unknown()

    # -- selectors -----------------------------------------------------------------------------

    def _selector(self, selector: pp.VectorSelector, use: Use, node: pp.Expr) -> Value:
        matchers = [
            *selector.matchers.matchers,
            *(m for group in selector.matchers.or_matchers for m in group),
        ]
        name = selector.name
        if name is None:
            for matcher in matchers:
                if matcher.name == "__name__" and MATCH_OPS.get(str(matcher.op)) == "=":
                    name = matcher.value
        if name is None or holds_placeholder(name):
            return unknown()
        series = self.catalog.lookup(name)
        if series is None:
            check, message = self.catalog.diagnose(name)
            self.report(check, message, node)
            return unknown(sources=(name,))
        for matcher in matchers:
            self._matcher(series, matcher, node)
        self._use(series, use, node)
        spec = series.metric
        if spec is not None and spec.stability is Stability.DEPRECATED:
            instead = f": use {spec.replaced_by}" if spec.replaced_by else ""
            self.report(DEPRECATED_METRIC, f"{spec.name} is deprecated in the contract{instead}", node)
        return series.value

    def _matcher(self, series: Series, matcher: pp.Matcher, node: pp.Expr) -> None:
        label = matcher.name
        op = MATCH_OPS.get(str(matcher.op), "=")
        value = series.value
        if label == "__name__" or value.shapes is None:
            return
        if not value.has_anywhere(label):
            dropped = value.dropped_by(label)
            if dropped is not None:
                self.report(
                    DROPPED_LABEL,
                    f'matcher {label}{op}"{matcher.value}": {series.name} no longer carries {label}, '
                    f"{dropped} removed it (labels: {value.describe_labels()})",
                    node,
                )
            else:
                self.report(
                    UNKNOWN_LABEL,
                    f'matcher {label}{op}"{matcher.value}": {series.name} has no label {label} '
                    f"(labels: {value.describe_labels()})",
                    node,
                )
            return
        if holds_placeholder(matcher.value):
            return
        if label == "le" and series.buckets is not None:
            problem = bucket_problem(op, matcher.value, series.buckets, series.name)
        else:
            domain = value.domains.get(label)
            problem = (
                None if domain is None else closed_set_problem(op, label, matcher.value, domain, series.name)
            )
        if problem is not None:
            self.report(LABEL_VALUE, problem.message, node, problem.severity)

    def _use(self, series: Series, use: Use, node: pp.Expr) -> None:
        if (
            series.type is SeriesType.GAUGE
            and use.usage is Usage.COUNTER_FUNCTION
            and use.by in RATE_FUNCTIONS
        ):
            self.report(
                RATE_OF_GAUGE,
                f"{use.by}() over {series.description}: a gauge goes up and down, and {use.by}() "
                "reads every fall as a counter reset; use deriv() or delta() (or the gauge itself)",
                node,
            )
        if series.type is SeriesType.COUNTER and use.usage is Usage.VALUE:
            how = f"by {use.by}" if use.by else "bare"
            self.report(
                BARE_COUNTER,
                f"{series.description} is used {how}, without rate(), irate() or increase(): a "
                "counter's value only grows, and starts again from 0 when its process restarts",
                node,
            )

    # -- functions -----------------------------------------------------------------------------

    def _call(self, node: pp.Call, use: Use) -> Value:
        name = node.func.name
        if name in COUNTER_FUNCTIONS:
            inner = Use(Usage.COUNTER_FUNCTION, name)
        elif name in EXISTENCE_FUNCTIONS:
            inner = Use(Usage.EXISTENCE, name)
        elif name in PASS_THROUGH_FUNCTIONS:
            inner = use
        else:
            inner = Use(Usage.VALUE, name)
        args: list[pp.Expr] = list(node.args)
        values: list[Value] = []
        for arg in args:  # a loop, not a comprehension: one Python frame less per nested call
            values.append(self._eval(arg, inner))
        if node.func.return_type == pp.ValueType.Scalar:
            return scalar()
        if name == "vector":
            return Value(Kind.INSTANT, (LabelSet(frozenset()),))
        if name in ("absent", "absent_over_time"):
            return _absent(args[0] if args else None)
        vector = next((value for value in values if value.is_vector), None)
        if vector is None:  # date functions without an argument work on vector(time())
            return Value(Kind.INSTANT, (LabelSet(frozenset()),))
        vector = attrs.evolve(vector, kind=Kind.INSTANT)
        strings = [arg.val if isinstance(arg, pp.StringLiteral) else "" for arg in args]
        if name == "histogram_quantile":
            return self._histogram_quantile(vector, node)
        if name == "label_replace" and len(strings) == 5:
            return self._label_replace(
                vector, node, dst=strings[1], replacement=strings[2], src=strings[3], regex=strings[4]
            )
        if name == "label_join" and len(strings) >= 3:
            return self._label_join(vector, strings[1], strings[3:], node)
        if name in ("sort_by_label", "sort_by_label_desc"):
            for label in strings[1:]:
                self.require(vector, label, f"{name}()", node)
            return vector
        if name == "info":
            return unknown(Kind.INSTANT, vector.sources)
        return vector

    def _histogram_quantile(self, vector: Value, node: pp.Call) -> Value:
        if vector.shapes is None:
            return vector
        if not vector.has_anywhere("le"):
            dropped = vector.dropped_by("le")
            if dropped is not None:
                message = (
                    f"histogram_quantile() needs the le label, but {dropped} removed it: keep le in "
                    f"the aggregation (by (le, ...)); what remains: {vector.describe_labels()}"
                )
            else:
                message = (
                    f"histogram_quantile() needs the le label of a histogram's _bucket series, and "
                    f"{vector.source_text()} has none (labels: {vector.describe_labels()})"
                )
            self.report(QUANTILE_WITHOUT_LE, message, node)
            return unknown(Kind.INSTANT, vector.sources)
        return vector.with_shapes(shape.remove(("le",), "histogram_quantile()") for shape in vector.shapes)

    def _label_replace(
        self, vector: Value, node: pp.Call, *, dst: str, replacement: str, src: str, regex: str
    ) -> Value:
        if src:
            self.require(vector, src, f'label_replace(..., src_label="{src}")', node)
        if vector.shapes is None or holds_placeholder(dst):
            return vector
        shapes: list[LabelSet] = []
        for shape in vector.shapes:
            if src in shape:
                always, never = regex in _MATCH_ALL or regex in _MATCH_NON_EMPTY, False
            else:  # the source value is "" on every series
                always = _fullmatch(regex, "") is True
                never = _fullmatch(regex, "") is False
            changed = (
                shape.remove((dst,), f'label_replace(..., "{dst}", "")')
                if replacement == ""
                else shape.add((dst,))
            )
            if not never:
                shapes.append(changed)
            if not always:
                shapes.append(shape)  # series whose source value does not match are left as they are
        result = vector.with_shapes(shapes)
        return attrs.evolve(result, domains={k: v for k, v in result.domains.items() if k != dst})

    def _label_join(self, vector: Value, dst: str, sources: Sequence[str], node: pp.Call) -> Value:
        for label in sources:
            self.require(vector, label, f"label_join(..., {label!r})", node)
        if vector.shapes is None or holds_placeholder(dst):
            return vector
        shapes = [
            shape.add((dst,))
            if any(label in shape for label in sources)
            else shape.remove((dst,), f'label_join(..., "{dst}", ...) of absent labels')
            for shape in vector.shapes
        ]
        result = vector.with_shapes(shapes)
        return attrs.evolve(result, domains={k: v for k, v in result.domains.items() if k != dst})

    # -- aggregations --------------------------------------------------------------------------

    def _aggregate(self, node: pp.AggregateExpr, use: Use) -> Value:
        op = str(node.op)
        if op in EXISTENCE_AGGREGATIONS:
            inner = Use(Usage.EXISTENCE, op)
        elif op in PASS_THROUGH_AGGREGATIONS:
            inner = use
        else:
            inner = Use(Usage.VALUE, op)
        if isinstance(node.param, pp.Expr):
            self._eval(node.param, Use(Usage.VALUE, op))
        value = self._eval(node.expr, inner)
        modifier = node.modifier
        labels = list(modifier.labels) if modifier is not None else []
        by = modifier is not None and modifier.type == pp.AggModifierType.By
        clause = op if modifier is None else f"{op} {'by' if by else 'without'} ({', '.join(labels)})"
        for label in labels:
            if by:
                self.require(value, label, clause, node)
            elif value.shapes is not None and not value.has_anywhere(label) and not holds_placeholder(label):
                self.report(
                    GROUPING_LABEL,
                    f"{clause} removes label {label}, which {value.source_text()} never carries "
                    f"(labels: {value.describe_labels()}): it has no effect",
                    node,
                    Severity.WARNING,
                )
        if value.shapes is None or any(holds_placeholder(label) for label in labels):
            return unknown(Kind.INSTANT, value.sources)
        if op in SELECTING_AGGREGATIONS:
            return attrs.evolve(value, kind=Kind.INSTANT)
        if by:
            shapes = [shape.keep(labels, clause) for shape in value.shapes]
        elif modifier is not None:
            shapes = [shape.remove(labels, clause) for shape in value.shapes]
        else:
            shapes = [shape.keep((), clause) for shape in value.shapes]
        if op == "count_values" and isinstance(node.param, pp.StringLiteral):
            added = node.param.val
            result = value.with_shapes((shape.add((added,)) for shape in shapes), Kind.INSTANT)
            return attrs.evolve(result, domains={k: v for k, v in result.domains.items() if k != added})
        return value.with_shapes(shapes, Kind.INSTANT)

    # -- binary operations ---------------------------------------------------------------------

    def _binary(self, node: pp.BinaryExpr, use: Use) -> Value:
        op = str(node.op)
        if op in SET_OPERATORS:
            lhs = self._eval(node.lhs, use)
            rhs = self._eval(node.rhs, use if op == "or" else Use(Usage.EXISTENCE, op))
        else:
            lhs = self._eval(node.lhs, Use(Usage.VALUE, op))
            rhs = self._eval(node.rhs, Use(Usage.VALUE, op))
        if not (lhs.is_vector and rhs.is_vector):
            if lhs.is_vector:
                return attrs.evolve(lhs, kind=Kind.INSTANT)
            if rhs.is_vector:
                return attrs.evolve(rhs, kind=Kind.INSTANT)
            return scalar()
        sources = tuple(dict.fromkeys((*lhs.sources, *rhs.sources)))
        modifier = node.modifier
        listed: list[str] = []
        if modifier is not None:
            listed = [
                *(modifier.matching.labels if modifier.matching else ()),
                *(modifier.group_labels or ()),
            ]
        if lhs.shapes is None or rhs.shapes is None or any(holds_placeholder(label) for label in listed):
            return unknown(Kind.INSTANT, sources)
        return VectorMatching(self, node, op, lhs, rhs).result()


def _fullmatch(pattern: str, text: str) -> bool | None:
    """Whether the anchored regex matches ``text``; ``None`` when Python cannot read it."""
    try:
        return re.fullmatch(pattern, text) is not None
    except re.error:
        return None


def _absent(arg: pp.Expr | None) -> Value:
    """absent() gives one series whose labels are the operand selector's equality matchers."""
    selector = arg.vector_selector if isinstance(arg, pp.MatrixSelector) else arg
    if not isinstance(selector, pp.VectorSelector):
        return Value(Kind.INSTANT, (LabelSet(frozenset()),))
    equal = {
        matcher.name: matcher.value
        for matcher in selector.matchers.matchers
        if matcher.name != "__name__" and MATCH_OPS.get(str(matcher.op)) == "="
    }
    domains = {label: frozenset({value}) for label, value in equal.items() if not holds_placeholder(value)}
    return Value(Kind.INSTANT, (LabelSet(frozenset(equal)),), domains)


def label_sets(value: Value) -> list[frozenset[str]]:
    """The possible label sets of ``value``, for reports and tests."""
    return [shape.names for shape in value.shapes or ()]
