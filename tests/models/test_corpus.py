"""The malicious corpus: every payload is live (the real unpickler creates its canary), and
the scanner blocks every one of them in both blocking modes without creating any canary."""

from __future__ import annotations

import io
import pickle
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from cadmetrics.models import Mode, scan
from tests.models.corpus import Payload, build_corpus

CORPUS = build_corpus()


def load_like_a_victim(payload: Payload, canary: Path) -> None:
    """Load the payload with the real unpickler in a child process, as a victim would."""
    data = payload.build(str(canary))
    code = textwrap.dedent(
        f"""
        import io, pickle, sys, zipfile
        {payload.setup}
        data = sys.stdin.buffer.read()
        streams = [data]
        if {payload.archive!r} and zipfile.is_zipfile(io.BytesIO(data)):
            archive = zipfile.ZipFile(io.BytesIO(data))
            streams = [archive.read(n) for n in archive.namelist() if not n.endswith(("version", "/0"))]
        for stream in streams:
            f = io.BytesIO(stream)
            while f.tell() < len(stream):
                try:
                    pickle.load(f)
                except Exception:
                    break
        """
    )
    subprocess.run([sys.executable, "-c", code], input=data, capture_output=True, timeout=60, check=False)


@pytest.mark.parametrize("payload", [p for p in CORPUS if p.live], ids=lambda p: p.name)
def test_every_live_payload_really_runs_under_pickle_load(payload: Payload, tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    load_like_a_victim(payload, canary)
    assert canary.exists(), f"{payload.name} is not a working attack"


@pytest.mark.parametrize("mode", [Mode.BLOCKLIST, Mode.ALLOWLIST])
@pytest.mark.parametrize("payload", CORPUS, ids=lambda p: p.name)
def test_blocking_modes_block_every_payload_and_run_none(
    payload: Payload, mode: Mode, tmp_path: Path
) -> None:
    canary = tmp_path / "canary"
    report = scan(payload.build(str(canary)), mode)
    assert report.blocked, report.render()
    assert report.block_reasons
    assert not canary.exists()


@pytest.mark.parametrize("payload", CORPUS, ids=lambda p: p.name)
def test_audit_records_the_danger_and_runs_nothing(payload: Payload, tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    report = scan(payload.build(str(canary)), Mode.AUDIT)
    assert not report.blocked
    assert report.block_reasons  # what the blocklist would say
    assert not canary.exists()


def test_the_archive_members_are_found_by_content(tmp_path: Path) -> None:
    odd = next(p for p in CORPUS if p.name == "zip member with an odd name")
    report = scan(odd.build(str(tmp_path / "canary")))
    assert report.members == ("weights/layer0.bin",)
    assert [g.member for g in report.globals if not g.allowed] == ["weights/layer0.bin"]
    with zipfile.ZipFile(io.BytesIO(odd.build("x"))) as archive:
        assert "archive/data/0" in archive.namelist()  # data members are not taken for pickles


def test_concatenated_pickles_are_all_scanned() -> None:
    payload = next(p for p in CORPUS if p.name == "benign pickle then malicious pickle")
    report = scan(payload.build("/nonexistent/canary"))
    assert report.pickle_count == 2
    assert [(g.pickle_index, g.qualified) for g in report.globals] == [(1, "posix.system")]


def test_pickle_load_only_reads_the_benign_half_of_the_polyglot() -> None:
    payload = next(p for p in CORPUS if p.name == "benign pickle + malicious zip polyglot")
    data = payload.build("/nonexistent/canary")
    assert pickle.loads(data) == [1, 2, 3]
    assert scan(data).blocked


def test_the_detection_table_covers_the_corpus() -> None:
    table = (Path(__file__).resolve().parents[2] / "docs" / "scan-detection.md").read_text(encoding="utf-8")
    for payload in CORPUS:
        assert f"| {payload.name} | blocked |" in table, f"regenerate docs/scan-detection.md ({payload.name})"
    assert f"| **blocked of {len(CORPUS)}** | {len(CORPUS)} |" in table
