"""Exposition text and OTLP payloads that the parsers cannot read end in one InputError naming
their origin, never in the parser's own KeyError, OverflowError or UnicodeDecodeError; a
well-formed native histogram reads as a result."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cadmetrics.cli import main
from cadmetrics.contract.model import Contract
from cadmetrics.contract.observed import from_exposition, from_otlp
from cadmetrics.contract.verify import Kind, verify
from cadmetrics.errors import InputError
from tests.conftest import REPOSITORY, ContractWriter, host_contract

pytest.importorskip("prometheus_client")

BIG = "9" * 400
NATIVE = "{count:2,sum:1.5,schema:0,zero_threshold:0,zero_count:0,positive_spans:[0:1],positive_deltas:[2]}"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (f"# TYPE a_x gauge\na_x {BIG}\n", "out of the range of a float"),
        (f"# TYPE a_x gauge\na_x {BIG}\n# EOF\n", "out of the range of a float"),
        (f"# TYPE a_x counter\na_x_total 1\na_x_created {BIG}\n# EOF\n", "out of the range of a float"),
        (f"# TYPE a_x gauge\na_x 1 {BIG}\n", "out of the range of a float"),  # the timestamp
        ("# TYPE a_x histogram\na_x {count:1,sum:1}\n# EOF\n", "field 'schema' is missing"),
        ("# TYPE a_x histogram\na_x {}\n# EOF\n", "field 'count' is missing"),
        (
            f"# TYPE a_x histogram\na_x {NATIVE.replace('count:2', f'count:{BIG}')}\n# EOF\n",
            "out of the range",
        ),
    ],
)
def test_unreadable_exposition_is_an_input_error_naming_the_file(text: str, problem: str) -> None:
    with pytest.raises(
        InputError, match=rf"^scrape\.prom: not valid Prometheus exposition text: .*{problem}"
    ):
        from_exposition(text, "scrape.prom")


HISTOGRAM = """
- name: myhost_latency_seconds
  type: histogram
  unit: seconds
  help: Latency.
  buckets: [1]
"""


@pytest.fixture
def contract(write_contract: ContractWriter) -> Contract:
    return host_contract(write_contract(HISTOGRAM))


def test_a_native_histogram_reads_as_count_and_sum_of_a_type_no_contract_declares(contract: Contract) -> None:
    text = f'# TYPE myhost_latency_seconds histogram\nmyhost_latency_seconds{{k="v"}} {NATIVE}\n# EOF\n'
    observed = from_exposition(text, "scrape.prom")
    assert observed.value("myhost_latency_seconds_count", k="v") == 2
    assert observed.value("myhost_latency_seconds_sum") == 1.5
    family = observed.family("myhost_latency_seconds")
    assert family is not None and family.type == "native_histogram"
    assert [v.kind for v in verify(observed, contract).errors] == [Kind.TYPE]


def test_a_native_histogram_beside_classic_buckets_is_checked_by_the_buckets(contract: Contract) -> None:
    text = (
        "# TYPE myhost_latency_seconds histogram\n"
        f"myhost_latency_seconds {NATIVE}\n"
        'myhost_latency_seconds_bucket{le="1.0"} 2\n'
        'myhost_latency_seconds_bucket{le="+Inf"} 2\n'
        "myhost_latency_seconds_count 2\n"
        "myhost_latency_seconds_sum 1.5\n"
        "# EOF\n"
    )
    observed = from_exposition(text, "scrape.prom")
    assert observed.value("myhost_latency_seconds") == 2  # the classic count, not counted twice
    assert verify(observed, contract, require_all=True).ok


def test_contract_verify_reports_an_unreadable_exposition_as_a_one_line_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    exposition = tmp_path / "scrape.prom"
    exposition.write_text(f"# TYPE cadmetrics_x gauge\ncadmetrics_x {BIG}\n", encoding="utf-8")
    code = main(["contract", "verify", "--exposition", str(exposition)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"cadmetrics: error: {exposition}: not valid Prometheus exposition text")
    assert err.count("\n") == 1 and "Traceback" not in err


#: An ExportMetricsServiceRequest whose one metric is named by the byte 0xFF: not UTF-8.
BAD_UTF8 = bytes([0x0A, 0x07, 0x12, 0x05, 0x12, 0x03, 0x0A, 0x01, 0xFF])


def test_an_otlp_string_of_bad_utf8_is_an_input_error(library_contract: Contract) -> None:
    pytest.importorskip("opentelemetry.proto.collector.metrics.v1.metrics_service_pb2")
    with pytest.raises(InputError, match=r"^received: not an OTLP ExportMetricsServiceRequest"):
        from_otlp(BAD_UTF8, library_contract, "received")


def test_an_otlp_string_of_bad_utf8_is_an_input_error_with_the_pure_python_protobuf() -> None:
    """protobuf's pure-Python backend (no C extension: PyPy, some platforms) raises
    UnicodeDecodeError itself, where the C backend raises DecodeError."""
    pytest.importorskip("opentelemetry.proto.collector.metrics.v1.metrics_service_pb2")
    script = (
        "from google.protobuf.internal import api_implementation\n"
        "assert api_implementation.Type() == 'python', api_implementation.Type()\n"
        "from cadmetrics.contract.compose import load_contract\n"
        "from cadmetrics.contract.observed import from_otlp\n"
        "from cadmetrics.errors import InputError\n"
        "try:\n"
        f"    from_otlp({BAD_UTF8!r}, load_contract(), 'received')\n"
        "except InputError as exc:\n"
        "    print(exc)\n"
    )
    env = {**os.environ, "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        check=False,
        cwd=REPOSITORY,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("received: not an OTLP ExportMetricsServiceRequest: UnicodeDecodeError")
