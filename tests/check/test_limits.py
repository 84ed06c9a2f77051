"""Expressions too large to parse or analyse safely: each is one CK001 finding naming its bound.

The inputs are the shapes that crashed the checker: a flat chain of operators (the parser took
gigabytes, then a segmentation fault), deeply nested brackets (memory growing with the square
of the depth) and deeply nested aggregations or operations (a ``RecursionError`` in the
analyzer). Inputs the parser cannot survive are only ever given to the checker with the bounds
in place, and the parser is replaced by a failure in the tests that show it is not reached.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from cadmetrics.check import Finding, Limits, check_dashboards, check_expression, check_rules
from cadmetrics.check.limits import (
    MAX_EXPRESSION_LENGTH,
    MAX_NESTING_DEPTH,
    MAX_OPERATORS,
    MAX_TREE_DEPTH,
    exceeded,
    measure,
)
from tests.check.support import CONTRACT

pytest.importorskip("promql_parser", reason="the checker needs the check extra (promql-parser)")

GOOD = 'sum by (version) (rate(cadmetrics_feature_extractions_total{result="error"}[5m]))'
#: (a) 5,000 terms, 20 KB: the parser took over 3 GB and died of a native stack overflow.
FLAT_CHAIN = " + ".join(["1"] * 5_000)
#: (b) 4,000 nested parentheses: 1.1 GB in the parser (10,000 were a segmentation fault).
NESTED_PARENS = "(" * 4_000 + "1" + ")" * 4_000
#: (c) 1,000 nested aggregations: a RecursionError in the analyzer.
NESTED_SUMS = "sum(" * 1_000 + "vector(1)" + ")" * 1_000
#: (c) 1,000 chained binary operations, and 1,000 nested ones: RecursionErrors too.
CHAINED_OR = " or ".join(["up"] * 1_000)
NESTED_OPERATIONS = "(" * 1_000 + "vector(1)" + " + 1)" * 1_000
UNARY_CHAIN = "-" * 1_000 + "vector(1)"


@pytest.fixture
def no_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if an expression of over 1,000 characters reaches the parser."""
    from cadmetrics.check.promql import parse

    def refuse(text: str) -> object:
        assert len(text) <= 1_000, f"the parser was given {len(text):,} characters"
        return parse(text)

    monkeypatch.setattr("cadmetrics.check.expression.parse", refuse)


def only_finding(found: list[Finding]) -> Finding:
    assert len(found) == 1, [str(finding) for finding in found]
    (finding,) = found
    assert finding.code == "CK001"
    assert finding.message.startswith("too large to check: ")
    assert len(finding.expression) <= 160
    return finding


def at_stack_depth(frames: int, call: Callable[[], list[Finding]]) -> list[Finding]:
    """``call()`` made from ``frames`` Python frames deeper than the caller."""
    return call() if frames <= 0 else at_stack_depth(frames - 1, call)


@pytest.mark.usefixtures("no_parser")
@pytest.mark.parametrize(
    ("expr", "bound"),
    [
        (FLAT_CHAIN, "max_length"),
        ("+".join(["1"] * 5_000), "max_operators"),  # the same chain in under 10,000 characters
        (NESTED_PARENS, "max_nesting"),
        (NESTED_SUMS, "max_nesting"),
        (CHAINED_OR, "max_operators"),
        (NESTED_OPERATIONS, "max_nesting"),
        (UNARY_CHAIN, "max_operators"),
        (" " * MAX_EXPRESSION_LENGTH + "1", "max_length"),
        ("x" * 50_000_000, "max_length"),
    ],
    ids=["flat-chain", "compact-chain", "parens", "sums", "or-chain", "operations", "unary", "pad", "50MB"],
)
def test_an_expression_beyond_a_bound_is_reported_without_parsing(expr: str, bound: str) -> None:
    finding = only_finding(check_expression(expr, CONTRACT))
    assert f"({bound})" in finding.message
    assert finding.is_error


def test_the_message_gives_the_size_and_the_bound() -> None:
    assert only_finding(check_expression(FLAT_CHAIN, CONTRACT)).message == (
        "too large to check: the expression is 19,997 characters long, over the checker's bound of "
        f"{MAX_EXPRESSION_LENGTH:,} (max_length)"
    )
    assert only_finding(check_expression(NESTED_PARENS, CONTRACT)).message == (
        f"too large to check: brackets nest 4,000 deep, over the checker's bound of {MAX_NESTING_DEPTH} "
        "(max_nesting)"
    )
    assert only_finding(check_expression(CHAINED_OR, CONTRACT)).message == (
        "too large to check: the expression holds 999 operators, over the checker's bound of "
        f"{MAX_OPERATORS} (max_operators)"
    )


@pytest.mark.usefixtures("no_parser")
def test_a_rule_beyond_a_bound_names_its_file_group_rule_and_line(tmp_path: Path) -> None:
    path = tmp_path / "huge.rules.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            groups:
              - name: generated
                rules:
                  - record: job:fine:sum
                    expr: vector(1)
                  - alert: Huge
                    expr: {FLAT_CHAIN} > 0
            """
        ),
        encoding="utf-8",
    )
    finding = only_finding(check_rules([path], CONTRACT))
    assert (finding.path, finding.location, finding.line) == (str(path), "generated > alert Huge", 6)
    assert str(finding).startswith(f"{path}:6: error CK001 invalid-expression [generated > alert Huge]: ")


def test_a_dashboard_query_beyond_a_bound_names_its_panel(tmp_path: Path) -> None:
    huge = '(sum(rate(cadmetrics_feature_extractions_total{version=~"$job"}[$__rate_interval]))' * 100
    panel = {
        "type": "timeseries",
        "title": "Generated",
        "targets": [{"refId": "A", "expr": GOOD}, {"refId": "B", "expr": huge + ")" * 100}],
    }
    path = tmp_path / "board.json"
    path.write_text(json.dumps({"title": "Board", "panels": [panel]}), encoding="utf-8")
    finding = only_finding(check_dashboards([path], CONTRACT))
    assert (finding.path, finding.location) == (str(path), "Board > Generated > B")
    assert "(max_nesting)" in finding.message
    assert "$job" in finding.expression  # shown as written, like every excerpt


def test_the_bounds_are_configurable() -> None:
    assert check_expression(GOOD, CONTRACT) == []
    tight = Limits(max_length=40, max_nesting=2, max_operators=0)
    assert "(max_length)" in only_finding(check_expression(GOOD, CONTRACT, limits=tight)).message
    assert "(max_nesting)" in only_finding(check_expression("abs(abs(abs(vector(1))))", limits=tight)).message
    assert "(max_operators)" in only_finding(check_expression("vector(1) + 1", limits=tight)).message
    loose = Limits(max_length=100_000, max_nesting=1_000, max_operators=1_000)
    assert check_expression(" + ".join(["vector(1)"] * 200), CONTRACT, limits=loose) == []


def test_an_expression_at_every_default_bound_is_judged_even_from_a_deep_stack() -> None:
    """The worst the defaults admit: brackets nested to the bound around a chain of as many
    operators as allowed, padded to the length bound, checked from 400 frames down."""
    chain = " + ".join(["vector(1)"] * (MAX_OPERATORS + 1))
    expr = "abs(" * (MAX_NESTING_DEPTH - 1) + chain + ")" * (MAX_NESTING_DEPTH - 1)
    expr += " " * (MAX_EXPRESSION_LENGTH - len(expr))
    size = measure(expr)
    assert (size.length, size.nesting, size.operators) == (
        MAX_EXPRESSION_LENGTH,
        MAX_NESTING_DEPTH,
        MAX_OPERATORS,
    )
    assert exceeded(expr) is None
    found = at_stack_depth(400, lambda: check_expression(expr, CONTRACT, alert=True))
    assert [finding.code for finding in found] == ["CK012"]  # judged: vector(1) has no condition


def test_the_analyzer_walks_the_deepest_tree_it_admits_and_reports_a_deeper_one() -> None:
    """Bounds raised above the defaults may let a deep tree reach the analyzer: it walks
    MAX_TREE_DEPTH levels (the worst kind, nested calls) and reports one more as a finding."""
    raised = Limits(max_nesting=10 * MAX_TREE_DEPTH, max_operators=10 * MAX_TREE_DEPTH)
    deepest = "abs(" * (MAX_TREE_DEPTH - 2) + "vector(1)" + ")" * (MAX_TREE_DEPTH - 2)  # vector, 1: 2 levels
    found = at_stack_depth(300, lambda: check_expression(deepest, CONTRACT, limits=raised, alert=True))
    assert [finding.code for finding in found] == ["CK012"]
    for deeper in ("abs(" + deepest + ")", " + ".join(["vector(1)"] * MAX_TREE_DEPTH), "-" + deepest):
        finding = only_finding(check_expression(deeper, CONTRACT, limits=raised))
        assert finding.message == (
            f"too large to check: its syntax tree is {MAX_TREE_DEPTH + 1} levels deep, over the "
            f"analyzer's bound of {MAX_TREE_DEPTH}"
        )


@pytest.mark.parametrize(
    ("text", "nesting", "operators"),
    [
        ('up{job="a(((", path=~`[[[`} + 1', 1, 1),
        ("label_replace(up, 'a', 'it\\'s ((', 'b', '(.*)')", 1, 0),
        ('up{a!="1", b=~"2", c!~"3", d="4"} and on (x) down', 1, 1),
        ("a AND b Or c unless d atan2 e ^ f % g / h * i - j + k", 0, 10),
        ("a == b != c <= d >= e < f > bool g", 0, 6),
        ("# a comment with ((( and + - *\nrate(x[5m:1m] offset -5m)", 2, 1),
        ('up{a="unterminated ((((', 1, 0),
        ("1e-5 + 0x1f", 0, 2),
    ],
)
def test_the_scan_skips_strings_comments_and_matchers(text: str, nesting: int, operators: int) -> None:
    size = measure(text)
    assert (size.nesting, size.operators) == (nesting, operators)


def test_real_expressions_stay_far_below_every_bound() -> None:
    from cadmetrics.check.files import read_dashboards, read_rule_files
    from tests.conftest import REPOSITORY

    contracts, foreign = REPOSITORY / "contracts", Path(__file__).parent / "foreign"
    texts = [
        query.text
        for board in read_dashboards([contracts / "dashboards", foreign])
        for query in board.queries
    ]
    texts += [rule.expr for rules in read_rule_files([contracts / "alerts", foreign]) for rule in rules.rules]
    sizes = [measure(text) for text in texts]
    assert len(sizes) > 100
    assert max(size.length for size in sizes) * 10 <= MAX_EXPRESSION_LENGTH
    assert max(size.nesting for size in sizes) * 10 <= MAX_NESTING_DEPTH
    assert max(size.operators for size in sizes) * 10 <= MAX_OPERATORS


@pytest.mark.parametrize(
    ("suffix", "text"),
    [
        (".json", '{"panels": ' + "[" * 100_000 + "]" * 100_000 + "}"),
        (".yaml", "groups: " + "[" * 5_000 + "]" * 5_000 + "\n"),
    ],
)
def test_files_nested_past_the_parsers_recursion_are_findings(tmp_path: Path, suffix: str, text: str) -> None:
    """The JSON decoder and PyYAML's composer recurse once per level: a few kilobytes of
    brackets exhaust Python's recursion limit before a single query is read."""
    from cadmetrics.check import check_dashboards, check_rules

    path = tmp_path / f"deep{suffix}"
    path.write_text(text, encoding="utf-8")
    findings = (check_dashboards if suffix == ".json" else check_rules)([path])
    assert len(findings) == 1 and "nested too deeply" in findings[0].message


def test_a_rule_file_of_megabytes_is_a_finding_before_it_is_parsed(tmp_path: Path) -> None:
    from cadmetrics.check.limits import MAX_RULE_FILE_CHARS

    path = tmp_path / "huge.rules.yaml"
    path.write_text("groups: []\n" + "# a comment line\n" * (MAX_RULE_FILE_CHARS // 16), encoding="utf-8")
    findings = check_rules([path])
    assert len(findings) == 1 and "more than a rule file may hold" in findings[0].message
