"""Whatever the text, loading ends in a contract or a located ContractLoadError, never in a
bare exception from deep inside; and whatever the exposition text or OTLP payload, verification
ends in a report or the library's InputError naming its origin."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TypeVar

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cadmetrics.contract import loader
from cadmetrics.contract.compose import compose, packaged_contract_path
from cadmetrics.contract.lint import lint
from cadmetrics.contract.loader import parse_contract_text
from cadmetrics.contract.model import Contract
from cadmetrics.contract.observed import from_exposition, from_otlp
from cadmetrics.contract.verify import verify
from cadmetrics.errors import CadMetricsError, ContractLoadError
from cadmetrics.telemetry import Telemetry
from cadmetrics.telemetry.exercise import exercise

LIBRARY_LINES = packaged_contract_path().read_text(encoding="utf-8").splitlines()


def load_or_located_error(text: str) -> None:
    error: ContractLoadError | None = None
    try:
        contract = compose([parse_contract_text(text, "fuzz.yaml")])
    except ContractLoadError as caught:
        error = caught
    else:
        lint(contract)  # lint runs on whatever loads
    if error is not None:
        assert (error.path, bool(error.rule), error.line >= 0) == ("fuzz.yaml", True, True)


HEAD = "namespace: a\nversion: 1.0.0\nmetrics:\n"


@pytest.mark.parametrize(
    "metric",
    [
        "- {name: a_x, type: gauge, help: 2001-13-45}",  # a date YAML resolves but cannot build
        "- {name: !!python/object:os.system x, type: gauge, help: h}",  # an unsafe tag
        "- {name: a_x, type: gauge, help: !!binary 'zz'}",  # broken base64
        "- {name: a_x, type: gauge, help: !!int 'x'}",
        "- {? [a]: 1}",
        # explicit tags on text their constructors cannot take: KeyError, AttributeError and
        # IndexError from inside PyYAML before they were caught
        "- {name: a_x, type: gauge, help: !!bool ''}",
        "- {name: a_x, type: gauge, help: !!bool maybe}",
        "- {name: a_x, type: gauge, help: !!timestamp 'not a date'}",
        "- {name: a_x, type: gauge, help: !!timestamp ''}",
        "- {name: a_x, type: gauge, help: !!int ''}",
        "- {name: a_x, type: gauge, help: !!int _}",
        "- {name: a_x, type: gauge, help: !!int '-'}",
        "- {name: a_x, type: gauge, help: !!float ''}",
        "- {name: a_x, type: gauge, help: !!float _}",
        "- {name: a_x, type: gauge, help: !!float 'x'}",
        "- {name: a_x, type: histogram, help: h, buckets: [!!bool '']}",
        "- {name: a_x, type: histogram, help: h, buckets: [!!timestamp x]}",
        "- {name: a_x, type: histogram, help: h, buckets: [!!float '']}",
    ],
)
def test_values_yaml_cannot_construct_are_located_errors(metric: str) -> None:
    with pytest.raises(ContractLoadError, match=r"^fuzz.yaml:4: \[schema-type\]"):
        parse_contract_text(HEAD + metric + "\n", "fuzz.yaml")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text(text: str) -> None:
    load_or_located_error(text)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutations_of_the_library_contract(data: st.DataObject) -> None:
    lines = list(LIBRARY_LINES)
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(lines) - 1))
        action = data.draw(st.sampled_from(["delete", "duplicate", "replace", "indent"]))
        if action == "delete":
            del lines[index]
        elif action == "duplicate":
            lines.insert(index, lines[index])
        elif action == "replace":
            lines[index] = data.draw(st.text(max_size=40))
        else:
            lines[index] = "  " + lines[index]
    load_or_located_error("\n".join(lines))


# -- seeded mutants: the inputs that once escaped, dropped into real files ----------------------

BIG = "9" * 400
_M = TypeVar("_M", str, bytes)


@attrs.frozen
class Fragments:
    """What mutants are made of: ``values`` replace a line's value (where ``value_start`` says
    it starts, -1 for a line without one) or are spliced in anywhere; ``lines`` are put first."""

    values: tuple[str, ...]
    lines: tuple[str, ...]
    value_start: Callable[[str], int]


def _yaml_value(line: str) -> int:
    """After a key's ``": "``: a scalar, or a whole label spec, becomes the fragment."""
    return -1 if line.lstrip().startswith("#") or ": " not in line else line.index(": ") + 2


def _sample_value(line: str) -> int:
    """After a sample's last space: its value, or its timestamp."""
    return -1 if line.startswith("#") or " " not in line else line.rindex(" ") + 1


#: The bound on a closed label while mutants are loaded: low, so that a set past it stays cheap.
FUZZ_LABEL_VALUES = 50

#: Values that broke a reader once: tags PyYAML's constructors choke on, integers beyond float
#: range, a closed set past the bound; and an ``extends`` the file system refuses. Broken syntax
#: is left to the tests above: it would stop the loader before the readers these reach.
CONTRACT = Fragments(
    values=(
        "!!bool ''",
        "!!bool maybe",
        "!!timestamp 'not a date'",
        "!!int 'x'",
        "!!int _",
        "!!float ''",
        BIG,
        f"[1, {BIG}]",
        "{values: [" + ", ".join(f"v{i}" for i in range(FUZZ_LABEL_VALUES + 1)) + "]}",
        "{values: [a, a]}",
    ),
    lines=("extends: ['" + "a" * 5000 + ".yaml']", 'extends: ["a\\0b.yaml"]'),  # too long; a NUL byte
    value_start=_yaml_value,
)

#: The same for exposition text: values and timestamps beyond float range, native histograms
#: whole and broken, and the punctuation of the format.
EXPOSITION = Fragments(
    values=(
        BIG,
        f"1 {BIG}",
        "{count:1,sum:1}",
        "{count:1,sum:1,schema:0,zero_threshold:0,zero_count:0}",
        "{}",
        'NaN # {a="b"} 1',
        "+Inf",
        "{",
        '"',
        "\\",
        "=",
    ),
    lines=("# EOF", "# TYPE cadmetrics_x histogram", "cadmetrics_x {count:1,sum:1}", "# UNIT x seconds"),
    value_start=_sample_value,
)


def mutant_text(text: str, rng: random.Random, fragments: Fragments) -> str:
    """``text`` with one to three lines deleted, doubled or indented, spliced with a fragment,
    given a fragment as their value (the most frequent action: it reaches the readers behind
    the syntax), or with a fragment line put first."""
    lines = text.split("\n")
    valued = [i for i, line in enumerate(lines) if fragments.value_start(line) >= 0]
    for _ in range(rng.randint(1, 3)):
        index = rng.randrange(len(lines))
        line = lines[index]
        action = rng.choice(("delete", "duplicate", "indent", "splice", "first", *["value"] * 5))
        if action == "delete" and len(lines) > 1:
            del lines[index]
            valued = [i - (i > index) for i in valued if i != index]
        elif action in ("delete", "duplicate"):
            lines.insert(index, line)
            valued = [i + (i >= index) for i in valued]
        elif action == "indent":
            lines[index] = "  " + line
        elif action == "splice":
            at = rng.randrange(len(line) + 1)
            lines[index] = line[:at] + rng.choice(fragments.values) + line[at + rng.randint(0, 3) :]
        elif action == "first":
            lines.insert(0, rng.choice(fragments.lines))
            valued = [i + 1 for i in valued]
        elif valued:
            index = rng.choice(valued)
            start = max(fragments.value_start(lines[index]), 0)
            lines[index] = lines[index][:start] + rng.choice(fragments.values)
    return "\n".join(lines)


def mutant_bytes(payload: bytes, rng: random.Random) -> bytes:
    """``payload`` with one to eight bytes replaced, flipped, deleted or inserted."""
    data = bytearray(payload)
    for _ in range(rng.randint(1, 8)):
        at = rng.randrange(len(data) or 1)
        action = rng.random()
        if action < 0.4:
            data[at : at + 1] = bytes([rng.randrange(256)])
        elif action < 0.6:
            data[at : at + 1] = bytes([(data[at] if at < len(data) else 0) ^ (1 << rng.randrange(8))])
        elif action < 0.8:
            del data[at : at + rng.randint(1, 16)]
        else:
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    return bytes(data)


def result_or_library_error(run: Callable[[_M], object], mutant: _M, origin: str) -> None:
    """``run(mutant)`` gives a result or a CadMetricsError that names ``origin``; anything else
    fails the test with the mutant that caused it."""
    error: CadMetricsError | None = None
    try:
        run(mutant)
    except CadMetricsError as caught:
        error = caught
    except Exception as escaped:
        raise AssertionError(f"{type(escaped).__name__} escaped on the mutant {mutant!r:.3000}") from escaped
    if error is not None:
        where = error.path if isinstance(error, ContractLoadError) else str(error)
        assert where.startswith(origin), (error, mutant)


@pytest.mark.parametrize("seed", range(4))
def test_seeded_mutants_of_the_library_contract(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "MAX_LABEL_VALUES", FUZZ_LABEL_VALUES)
    rng = random.Random(seed)
    text = "\n".join(LIBRARY_LINES)
    for _ in range(25):
        mutant = mutant_text(text, rng, CONTRACT)
        result_or_library_error(
            lambda mutated: lint(compose([parse_contract_text(mutated, "fuzz.yaml")])), mutant, "fuzz.yaml"
        )


@pytest.fixture(scope="module")
def expositions(library_contract: Contract) -> tuple[str, ...]:
    """What the library's Telemetry exports once every metric was emitted, in the classic text
    format and in OpenMetrics."""
    pytest.importorskip("prometheus_client")
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

    registry = CollectorRegistry()
    exercise(Telemetry(library_contract, [registry], strict=True))
    openmetrics: bytes = generate_openmetrics(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry).decode(), openmetrics.decode()


@pytest.mark.parametrize("seed", range(4))
def test_seeded_mutants_of_a_real_exposition(
    seed: int, expositions: tuple[str, ...], library_contract: Contract
) -> None:
    assert all(verify(from_exposition(text, "scrape"), library_contract).ok for text in expositions)
    rng = random.Random(seed)
    for _ in range(60):
        mutant = mutant_text(rng.choice(expositions), rng, EXPOSITION)
        result_or_library_error(
            lambda mutated: verify(from_exposition(mutated, "scrape"), library_contract).render(),
            mutant,
            "scrape",
        )


@pytest.fixture(scope="module")
def otlp_payload(library_contract: Contract) -> bytes:
    """An ExportMetricsServiceRequest as the OTLP exporter sends it, every metric emitted."""
    pytest.importorskip("opentelemetry.sdk.metrics")
    pytest.importorskip("opentelemetry.exporter.otlp.proto.common.metrics_encoder")
    from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from cadmetrics.telemetry.otel import meter_provider

    reader = InMemoryMetricReader()
    provider = meter_provider(library_contract, [reader])
    exercise(Telemetry(library_contract, [provider], strict=True))
    data = reader.get_metrics_data()
    assert data is not None
    payload: bytes = encode_metrics(data).SerializeToString()
    provider.shutdown()
    return payload


@pytest.mark.parametrize("seed", range(4))
def test_seeded_mutants_of_an_otlp_payload(
    seed: int, otlp_payload: bytes, library_contract: Contract
) -> None:
    assert verify(from_otlp(otlp_payload, library_contract, "otlp"), library_contract).ok
    rng = random.Random(seed)
    for _ in range(500):
        mutant = mutant_bytes(otlp_payload, rng)
        result_or_library_error(
            lambda payload: verify(from_otlp(payload, library_contract, "otlp"), library_contract).render(),
            mutant,
            "otlp",
        )
