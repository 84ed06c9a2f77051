"""A small deterministic mutation fuzz over the shipped dashboards and rules.

Every query of the shipped dashboards and every expression of the shipped rule files is
mutated with fixed seeds (characters and PromQL tokens deleted, inserted, swapped, slices
repeated, and now and then blown up into the shapes that once crashed the parser). Whatever
comes out, the checker must answer with findings: no exception, no crash, no recursion error.
The blown-up mutants are far beyond the bounds of :mod:`cadmetrics.check.limits`, which keep
them from the parser; every mutant the bounds let through is small enough for the parser.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import attrs
import pytest

from cadmetrics.check import CHECKS, Finding
from cadmetrics.check.limits import exceeded
from tests.check.support import CONTRACT
from tests.conftest import REPOSITORY

if TYPE_CHECKING:
    from cadmetrics.check.catalog import Catalog
    from cadmetrics.check.grafana import Dashboard, Query
    from cadmetrics.check.rulefiles import Rule

pytest.importorskip("promql_parser", reason="the checker needs the check extra (promql-parser)")

SEEDS = (1, 2, 3)
MUTANTS_PER_EXPRESSION = 8
CODES = frozenset(check.code for check in CHECKS)

#: Fragments a mutation inserts: PromQL's punctuation, operators, keywords and Grafana's syntax.
TOKENS = (
    "(", ")", "[", "]", "{", "}", ",", '"', "'", "`", "\\", "#", "\n", " ", ":", "@", "=", "~", "!",
    "+", "-", "*", "/", "%", "^", "==", "!=", ">=", "<", " and ", " or ", " unless ", " atan2 ",
    " bool ", " by (le) ", " without (job) ", " on (job) ", " ignoring (instance) ", " group_left ",
    " group_right (version) ", " offset 5m ", " @ start() ", "[5m]", "[5m:1m]", "[$__rate_interval]",
    "sum(", "rate(", "histogram_quantile(0.9, ", "label_replace(", "absent(", "vector(1)", "1e-3",
    "Inf", "NaN", "0x1f", '"$job"', "$job", "${job:regex}", "[[job]]", "le", "__name__", "_total",
    "_bucket", "up", "é", "\x00",
)  # fmt: skip


def blow_up(text: str, rng: random.Random) -> str:
    """One of the shapes that made the parser or the analyzer fail, built around ``text``."""
    count = rng.choice((300, 1_000, 5_000))
    shape = rng.randrange(5)
    if shape == 0:
        return f" {rng.choice(('+', 'or', '*', '^'))} ".join([text] * count)
    if shape == 1:
        return "(" * count + text + ")" * count
    if shape == 2:
        return "sum(" * count + text + ")" * count
    if shape == 3:
        return "-" * count + text
    return text + "".join(f" + {rng.random():.3f}" for _ in range(count))


def mutate(text: str, rng: random.Random) -> str:
    """``text`` with one to three random edits (or, once in twelve, blown up)."""
    if rng.randrange(12) == 0:
        return blow_up(text, rng)
    for _ in range(rng.randint(1, 3)):
        start = rng.randrange(len(text) + 1)
        end = min(len(text), start + rng.randint(0, 12))
        edit = rng.randrange(5)
        if edit == 0:
            text = text[:start] + text[end:]
        elif edit == 1:
            text = text[:start] + rng.choice(TOKENS) + text[start:]
        elif edit == 2:
            text = text[:start] + text[start:end] * rng.randint(2, 40) + text[end:]
        elif edit == 3:
            other = rng.randrange(len(text) + 1)
            text = text[:start] + text[other : other + end - start] + text[end:]
        else:
            text = text[:start] + rng.choice(TOKENS) + text[end:]
    return text


def assert_findings(found: object, text: str) -> None:
    assert isinstance(found, list), text
    for finding in found:
        assert isinstance(finding, Finding), text
        assert finding.code in CODES and finding.message, text


@attrs.frozen
class Shipped:
    """The shipped queries (with their dashboards) and rules, and the catalog that knows the
    series those rules record."""

    catalog: Catalog
    queries: tuple[tuple[Dashboard, Query], ...]
    rules: tuple[Rule, ...]

    def texts(self) -> list[str]:
        return [query.text for _, query in self.queries] + [rule.expr for rule in self.rules]

    def check(self, index: int, text: str) -> list[Finding]:
        """The findings of shipped expression ``index`` with ``text`` in its place."""
        from cadmetrics.check.expression import check_text
        from cadmetrics.check.grafana import check_dashboard

        if index < len(self.queries):
            board, query = self.queries[index]
            changed = attrs.evolve(board, queries=(attrs.evolve(query, text=text),))
            return check_dashboard(changed, self.catalog)
        rule = self.rules[index - len(self.queries)]
        return list(check_text(text, self.catalog, rule.place, alert=rule.kind == "alert").findings)


@pytest.fixture(scope="module")
def shipped() -> Shipped:
    from cadmetrics.check.files import read_dashboards, read_rule_files
    from cadmetrics.check.rules import RuleSet

    rule_set = RuleSet(read_rule_files([REPOSITORY / "contracts" / "alerts"]), CONTRACT)
    boards = read_dashboards([REPOSITORY / "contracts" / "dashboards"])
    queries = tuple((board, query) for board in boards for query in board.queries)
    return Shipped(rule_set.catalog, queries, tuple(rule_set.rules))


@pytest.mark.parametrize("seed", SEEDS)
def test_mutated_shipped_expressions_give_findings_and_nothing_else(seed: int, shipped: Shipped) -> None:
    texts = shipped.texts()
    assert len(texts) > 50
    rng = random.Random(seed)
    rejected = 0
    for index, original in enumerate(texts):
        for _ in range(MUTANTS_PER_EXPRESSION):
            text = mutate(original, rng)
            rejected += exceeded(text) is not None
            assert_findings(shipped.check(index, text), text)
    assert rejected  # blown-up mutants were among them, and were refused before parsing
