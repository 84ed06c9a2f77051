"""The scanner on benign models, on malformed input, and under fuzzing."""

from __future__ import annotations

import _compat_pickle
import collections
import contextlib
import datetime
import decimal
import fractions
import io
import pickle
import uuid
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cadmetrics.errors import InputError, UnknownScanMode, UnsupportedModelFormat
from cadmetrics.models import DEFAULT_BLOCKLIST, Mode, Policy, parse_mode, scan
from tests.models.corpus import build_corpus

BENIGN = {
    "numpy arrays and dtypes": {
        "w": np.arange(12, dtype=np.float32).reshape(3, 4),
        "i": np.array([1, 2, 3], dtype=np.int64),
        "dtype": np.dtype("complex128"),
        "scalar": np.float64(2.5),
        "structured": np.zeros(2, dtype=[("x", "<f4"), ("n", "<i2")]),
    },
    "collections": [
        collections.OrderedDict(a=1),
        collections.defaultdict(list, {"k": [1]}),
        collections.deque([1, 2]),
        collections.Counter("abca"),
    ],
    "datetime, decimal, fractions, uuid": [
        datetime.datetime(2024, 5, 1, 12, 30, tzinfo=datetime.UTC),
        datetime.date(2024, 5, 1),
        datetime.timedelta(seconds=5),
        decimal.Decimal("1.25"),
        fractions.Fraction(1, 3),
        uuid.UUID(int=7),
    ],
    "sets, complex, bytes": [
        {1, 2},
        frozenset({"a"}),
        3 + 4j,
        b"\x00\xff",
        bytearray(b"ab"),
        None,
        True,
        1.5,
    ],
    "a text longer than the look-ahead": "x" * 100_000,
}


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("mode", [Mode.BLOCKLIST, Mode.ALLOWLIST])
@pytest.mark.parametrize("name", BENIGN)
def test_benign_models_are_allowed(name: str, mode: Mode, protocol: int) -> None:
    report = scan(pickle.dumps(BENIGN[name], protocol=protocol), mode)
    assert not report.blocked, report.render()
    assert report.pickle_count == 1
    assert report.problems == ()


def test_the_report_describes_the_stream(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(BENIGN["collections"], protocol=4))
    report = scan(path, "audit")
    assert report.source == str(path)
    assert report.size == path.stat().st_size
    assert len(report.sha256) == 64
    assert report.protocols == (4,)
    assert report.opcodes["STACK_GLOBAL"] >= 4
    assert {g.qualified for g in report.globals} >= {"collections.OrderedDict", "collections.deque"}
    assert all(g.position > 0 for g in report.globals)
    assert scan(io.BytesIO(path.read_bytes())).sha256 == report.sha256


def test_modes_by_name_and_legacy_alias() -> None:
    assert parse_mode("Allowlist") is Mode.ALLOWLIST
    with pytest.warns(DeprecationWarning, match="'blacklist' is deprecated; use 'blocklist'"):
        assert parse_mode("blacklist") is Mode.BLOCKLIST
    with pytest.warns(DeprecationWarning, match="'whitelist' is deprecated; use 'allowlist'"):
        assert parse_mode("whitelist") is Mode.ALLOWLIST
    with pytest.raises(UnknownScanMode, match="unknown scan mode 'strict'"):
        scan(pickle.dumps(1), "strict")
    assert [m.gauge_value for m in Mode] == [0, 1, 2]


def test_policies_extend_both_lists() -> None:
    class_ref = b"cmyapp.models\nClassifier\n)R."
    assert scan(class_ref, "allowlist").blocked
    widened = Policy().extend(allow=["myapp.models.Classifier"])
    assert not scan(class_ref, "allowlist", widened).blocked
    assert scan(b"cmyapp.models\nsave\n)R.", "allowlist", widened).blocked  # exact names only
    assert scan(class_ref, "blocklist", Policy().extend(block=["myapp"])).blocked
    # the blocklist wins even over an explicit allowlist entry
    assert scan(b"cos\nsystem\n)R.", "allowlist", Policy().extend(allow=["os.system"])).blocked


@pytest.mark.parametrize("package", ["sklearn", "numpy", "tests.models", "collections"])
def test_the_allowlist_refuses_whole_packages(package: str) -> None:
    with pytest.raises(ValueError, match="name each of its classes"):
        Policy().extend(allow=[package])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (pickle.dumps([1, 2, 3])[:-3], "truncated"),
        (pickle.dumps(1) + b"\x00\x01junk", "trailing data"),
        (b"\x80\x05\x95\xff\xff\xff\xff\xff\xff\xff\x7f", ""),  # a frame claiming 2**63 bytes
        (b"\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\x7f.", ""),  # BINBYTES8 of a lying length
        (b"(((((((((((((((.", ""),
        (b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01h\x09u.", ""),  # BINGET of an unset memo slot
    ],
)
def test_malformed_streams_are_blocked_with_an_offset(data: bytes, message: str) -> None:
    report = scan(data, "blocklist")
    assert report.blocked
    [problem] = report.problems
    assert message in problem.message
    assert 0 <= problem.offset <= len(data)
    assert not scan(data, "audit").blocked  # audit blocks nothing, but records it
    assert scan(data, "audit").problems


def test_input_that_is_neither_pickle_nor_zip_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedModelFormat, match="not a model file this scanner knows"):
        scan(b"\x7fELF\x02\x01\x01")
    with pytest.raises(UnsupportedModelFormat):
        scan(b"")
    with pytest.raises(InputError, match="cannot read"):
        scan(tmp_path / "absent.pkl")


def test_an_unreadable_zip_member_blocks() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", pickle.dumps([1]) * 50)
    data = bytearray(buffer.getvalue())
    data[60] ^= 0xFF  # corrupt the compressed data: CRC or inflate error
    report = scan(bytes(data))
    assert report.blocked
    assert report.problems[0].member == "archive/data.pkl"


def _bomb(members: int, size: int) -> bytes:
    """Members that each deflate ``size`` bytes of one repeated opcode down to almost nothing;
    each could start a pickle (a zip bomb aimed at a scanner that reads pickles whole)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for index in range(members):
            archive.writestr(f"archive/data{index}.pkl", b"N" * size)
    return buffer.getvalue()


def test_a_member_that_unpacks_past_the_limit_is_a_problem_not_read() -> None:
    data = _bomb(1, 64 * 1024**2)
    assert len(data) < 128 * 1024
    report = scan(data, max_unpacked_bytes=8 * 1024**2)
    assert report.blocked
    assert "past the scan's limit of 8388608 bytes" in report.problems[0].message
    assert report.problems[0].member == "archive/data0.pkl"
    assert report.pickle_count == 0


def test_many_members_add_up_to_the_limit() -> None:
    report = scan(_bomb(40, 1024**2), max_unpacked_bytes=16 * 1024**2)
    assert report.blocked
    messages = [problem.message for problem in report.problems]
    assert any("the archive unpacks past the scan's limit" in message for message in messages)


def test_data_members_are_read_no_further_than_their_first_bytes() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"w": "archive/data/0"}, protocol=2))
        archive.writestr("archive/data/0", b"\x00" * 256 * 1024**2)  # no pickle starts with 0x00
    report = scan(buffer.getvalue(), "allowlist", max_unpacked_bytes=1024**2)
    assert not report.blocked, report.render()
    assert report.members == ("archive/data.pkl",)


@pytest.mark.parametrize("mode", [Mode.BLOCKLIST, Mode.ALLOWLIST])
def test_an_archive_whose_header_reads_as_a_broken_pickle_is_just_an_archive(mode: Mode) -> None:
    """``PK`` is PERSID to the unpickler: a pickle view of every zip that fails at the first
    non-ASCII byte before a newline. Failing without naming a global, it could run nothing."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        # every header byte before the member's newline is ASCII (its CRC too), so the
        # persistent id parses and the unpickler goes on into the next header
        archive.writestr(zipfile.ZipInfo("archive/version", (1980, 1, 1, 0, 0, 0)), b"4\n")
        archive.writestr("archive/data.pkl", pickle.dumps([b"\xff\n"], protocol=3))
        archive.writestr("archive/data/0", b"\x01" * 100_000)
    data = buffer.getvalue()
    assert data[: data.index(b"\n")].isascii()
    report = scan(data, mode)
    assert not report.blocked, report.render()
    assert report.members == ("archive/data.pkl",)


MALICIOUS = [p.build("/nonexistent/cadmetrics-canary") for p in build_corpus()]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_crash_the_scanner(data: bytes) -> None:
    with contextlib.suppress(UnsupportedModelFormat):
        scan(data, "blocklist")


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_mutated_attacks_never_crash_and_never_pass_as_safe(data: st.DataObject) -> None:
    original = data.draw(st.sampled_from(MALICIOUS))
    mutated = bytearray(original)
    for _ in range(data.draw(st.integers(0, 3))):
        index = data.draw(st.integers(0, len(mutated) - 1))
        mutated[index] = data.draw(st.integers(0, 255))
    try:
        report = scan(bytes(mutated), "blocklist")
    except UnsupportedModelFormat:
        return
    asked = _globals_the_real_unpickler_asks_for(bytes(mutated))
    dangerous = [q for q in asked if _dangerous(q)]
    assert not dangerous or report.blocked, f"{dangerous} passed as safe: {report.render()}"


def _dangerous(qualified: str) -> bool:
    """Independent of the scanner's code: the blocklist's data, matched by plain prefixes,
    with Python 2 names mapped as the unpickler maps them."""
    module, _, name = qualified.partition("|")
    spellings = {f"{module}.{name}"}
    if (module, name) in _compat_pickle.NAME_MAPPING:
        spellings.add(".".join(_compat_pickle.NAME_MAPPING[(module, name)]))
    if module in _compat_pickle.IMPORT_MAPPING:
        spellings.add(f"{_compat_pickle.IMPORT_MAPPING[module]}.{name}")
    return any(
        spelled == entry or spelled.startswith(entry + ".")
        for spelled in spellings
        for entry in DEFAULT_BLOCKLIST
    )


def _globals_the_real_unpickler_asks_for(data: bytes) -> list[str]:
    """Every global CPython's unpickler asks for, through to the end of every pickle: a
    recorder of the test's own hands back harmless classes and keeps going."""
    seen: list[str] = []

    class Anything:
        def __init__(self, *args: object, **kwargs: object) -> None:
            pass

        def __call__(self, *args: object, **kwargs: object) -> Anything:
            return Anything()

        def __setstate__(self, state: object) -> None:
            pass

        def __setitem__(self, key: object, value: object) -> None:
            pass

        def append(self, item: object) -> None:
            pass

        def extend(self, items: object) -> None:
            pass

    class Recorder(pickle.Unpickler):
        def find_class(self, module: str, name: str, /) -> object:
            seen.append(f"{module}|{name}")
            return type("Recorded", (Anything,), {})

        def persistent_load(self, pid: object) -> object:
            return Anything()

    stream = io.BytesIO(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        while stream.tell() < len(data):
            try:
                Recorder(stream).load()
            except Exception:
                break
    return seen


@pytest.mark.parametrize("index", range(0, len(MALICIOUS), 3))
def test_a_path_and_its_bytes_scan_alike(tmp_path: Path, index: int) -> None:
    data = MALICIOUS[index]
    path = tmp_path / "model.bin"
    path.write_bytes(data)
    from_path, from_bytes = scan(path), scan(data)
    assert from_path.sha256 == from_bytes.sha256
    assert from_path.verdict == from_bytes.verdict
    assert from_path.problems == from_bytes.problems
    assert [(g.qualified, g.position, g.allowed) for g in from_path.globals] == [
        (g.qualified, g.position, g.allowed) for g in from_bytes.globals
    ]


def test_odd_zip_headers_are_problems_not_crashes() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps([1]))
    data = bytearray(buffer.getvalue())
    central = data.find(b"PK\x01\x02")
    data[central + 6] = 0xFF  # "version needed to extract": beyond what zipfile implements
    report = scan(bytes(data))
    assert report.blocked and report.problems
    nameless = bytearray(buffer.getvalue())
    for signature, name_length_offset in ((b"PK\x03\x04", 26), (b"PK\x01\x02", 28)):
        start = nameless.find(signature)
        nameless[start + name_length_offset] = 0  # an empty member name
    report = scan(bytes(nameless))
    assert report.size == len(nameless)  # it returned a report: no exception escaped


def test_registered_extension_codes_are_judged_every_time() -> None:
    import copyreg

    code = 0xF7
    copyreg.add_extension("posix", "system", code)
    try:
        payload = b"\x80\x02\x82" + bytes([code]) + b"(S'true'\ntR."
        for _ in range(2):  # the second scan must not be answered from the unpickler's cache
            report = scan(payload)
            assert report.blocked
            assert [g.qualified for g in report.globals] == ["posix.system"]
        assert code not in copyreg._extension_cache  # type: ignore[attr-defined]
    finally:
        copyreg.remove_extension("posix", "system", code)


def test_tensor_bytes_that_start_like_a_pickle_are_data() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"weights": [1.0]}, protocol=2))
        archive.writestr("archive/data/0", b"K\x05" + np.arange(64, dtype=np.float32).tobytes())
        archive.writestr("archive/data/1", b"(" + bytes(range(256)) * 4)
    report = scan(buffer.getvalue(), "allowlist")
    assert not report.blocked, report.render()
    assert report.members == ("archive/data.pkl",)
