"""Each container the scanner reads, on the cases that could hide a payload or trip a reader:
joblib's inline arrays and compressions, npy/npz object arrays, safetensors headers that lie,
ONNX external data that leaves the model's folder, and first opcodes only the real
unpickler accepts."""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import re
import struct
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cadmetrics import Telemetry
from cadmetrics.errors import CadMetricsError, ModelBlocked, UnsupportedModelFormat
from cadmetrics.models import Mode, ModelLoader, scan
from cadmetrics.models.interface import Interface
from cadmetrics.models.loader import WEIGHT_FORMATS
from cadmetrics.models.report import Role

joblib = pytest.importorskip("joblib")

ARRAYS: dict[str, np.ndarray[Any, Any]] = {
    "float": np.linspace(0.0, 1.0, 1000).reshape(10, 100),
    "fortran": np.asfortranarray(np.arange(60, dtype=np.int32).reshape(6, 10)),
    "big-endian": np.arange(7, dtype=">f8"),
    "structured": np.zeros(3, dtype=[("x", "<f4"), ("n", "<i2")]),
    "bytes": np.frombuffer(b"cos\nsystem\n(S'x'\ntR." * 10, dtype=np.uint8),  # opcodes as data
}


class RunsCode:
    def __init__(self, canary: str) -> None:
        self.canary = canary

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, (f"touch {self.canary}",))


def dumped(value: object, **kwargs: Any) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(value, buffer, **kwargs)
    return buffer.getvalue()


@pytest.mark.parametrize("compress", [0, ("zlib", 3), ("gzip", 3), ("bz2", 3), ("lzma", 3), ("xz", 3)])
def test_joblib_arrays_are_data_and_load_as_written(compress: Any, tmp_path: Path) -> None:
    data = dumped(dict(ARRAYS), compress=compress)
    report = scan(data, "allowlist")
    assert not report.blocked, report.render()
    assert report.format == ("joblib" if not compress else f"joblib/{compress[0]}")
    path = tmp_path / "arrays.joblib"
    path.write_bytes(data)
    loaded = _load_weights(path)
    for name, array in ARRAYS.items():
        assert np.array_equal(loaded[name], array), name
        assert loaded[name].dtype.newbyteorder("=") == array.dtype.newbyteorder("="), name


def _load_weights(path: Path) -> Any:
    """A joblib file of arrays, not an estimator: no predict() to ask for."""
    return ModelLoader(interface=Interface(methods=())).load(path)


@pytest.mark.parametrize("compress", [0, 3])
def test_a_payload_after_joblib_arrays_or_inside_an_object_array_is_found(
    compress: int, tmp_path: Path
) -> None:
    canary = tmp_path / "canary"
    after_arrays = {"w": ARRAYS["float"], "hook": RunsCode(str(canary))}
    in_objects = {"w": np.array([1, RunsCode(str(canary))], dtype=object)}
    for value in (after_arrays, in_objects):
        for mode in (Mode.BLOCKLIST, Mode.ALLOWLIST):
            report = scan(dumped(value, compress=compress), mode)
            assert report.blocked
            assert any(ref.qualified in ("posix.system", "os.system") for ref in report.globals)
    assert not canary.exists()


def test_a_joblib_bomb_is_a_finding_not_a_full_memory() -> None:
    bomb = dumped({"zeros": np.zeros(64 << 20, dtype=np.uint8)}, compress=("zlib", 9))
    assert len(bomb) < 1 << 20
    report = scan(bomb, "allowlist", max_unpacked_bytes=8 << 20)
    assert report.blocked
    assert "limit" in str(report.problems[0])
    assert not scan(bomb, "allowlist").blocked  # under the default limit it is just big


def test_a_joblib_array_that_claims_more_bytes_than_the_file_holds_is_malformed() -> None:
    data = dumped({"w": np.arange(1000.0)})
    report = scan(data[:-100], "allowlist")
    assert report.blocked and report.block_reasons == ("malformed",)


def test_npy_object_arrays_are_pickles_and_plain_arrays_data(tmp_path: Path) -> None:
    plain, objects = io.BytesIO(), io.BytesIO()
    np.save(plain, ARRAYS["float"])
    np.save(objects, np.array([RunsCode(str(tmp_path / "canary"))], dtype=object), allow_pickle=True)
    report = scan(plain.getvalue())
    assert report.format == "numpy" and not report.blocked and not report.has_code
    assert scan(objects.getvalue(), "blocklist").blocked
    path = tmp_path / "w.npy"
    path.write_bytes(plain.getvalue())
    assert np.array_equal(ModelLoader().load(path), ARRAYS["float"])


def test_npz_members_are_scanned_by_content(tmp_path: Path) -> None:
    benign, hostile = io.BytesIO(), io.BytesIO()
    np.savez_compressed(benign, w=ARRAYS["float"], b=ARRAYS["fortran"])
    np.savez(hostile, w=ARRAYS["float"], o=np.array([RunsCode(str(tmp_path / "canary"))], dtype=object))
    report = scan(benign.getvalue())
    assert report.format == "npz" and not report.blocked
    assert {part.role for part in report.parts if part.name.endswith(".npy")} == {Role.ARRAY}
    blocked = scan(hostile.getvalue(), "blocklist")
    assert blocked.blocked and blocked.members == ("o.npy",)
    path = tmp_path / "w.npz"
    path.write_bytes(benign.getvalue())
    loaded = ModelLoader().load(path)
    assert set(loaded) == {"w", "b"} and np.array_equal(loaded["b"], ARRAYS["fortran"])
    assert not (tmp_path / "canary").exists()


def safetensors_bytes(header: dict[str, Any], data: bytes) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


GOOD_HEADER = {
    "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
    "b": {"dtype": "I64", "shape": [1], "data_offsets": [8, 16]},
}


@pytest.mark.parametrize(
    ("header", "data", "message"),
    [
        (GOOD_HEADER, bytes(16) + b"extra", "trailing bytes"),
        (GOOD_HEADER, bytes(12), "does not fit|out of bounds"),
        (
            {**GOOD_HEADER, "b": {"dtype": "I64", "shape": [1], "data_offsets": [4, 12]}},
            bytes(12),
            "overlaps",
        ),
        ({**GOOD_HEADER, "b": {"dtype": "I64", "shape": [1], "data_offsets": [12, 20]}}, bytes(20), "hole"),
        ({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, bytes(8), "needs 12 bytes"),
        ({"a": {"dtype": "Q99", "shape": [2], "data_offsets": [0, 8]}}, bytes(8), "unknown dtype"),
    ],
)
def test_a_safetensors_header_that_lies_is_blocked(header: dict[str, Any], data: bytes, message: str) -> None:
    report = scan(safetensors_bytes(header, data))
    assert report.format == "safetensors" and report.blocked
    assert len(report.problems) == 1
    assert re.search(message, str(report.problems[0])), report.problems[0]


def test_a_safetensors_file_loads_bit_for_bit(tmp_path: Path) -> None:
    values = np.array([1.5, -2.0], dtype="<f4").tobytes() + np.array([7], dtype="<i8").tobytes()
    path = tmp_path / "w.safetensors"
    path.write_bytes(safetensors_bytes(GOOD_HEADER, values))
    report = scan(path)
    assert not report.blocked and not report.has_code and "no code" in report.render()
    loaded = ModelLoader(tensors="numpy").load(path)
    assert loaded["a"].tolist() == [1.5, -2.0] and loaded["b"].tolist() == [7]


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        out.append(value & 0x7F | (0x80 if value > 0x7F else 0))
        value >>= 7
        if not value:
            return bytes(out)


def onnx_with_external(location: str, nested: bool = False) -> bytes:
    entry = _field(1, b"location") + _field(2, location.encode())
    tensor = _field(8, b"weight") + _field(13, entry) + b"\x70\x01"  # data_location = EXTERNAL
    graph = _field(5, tensor)
    if nested:  # inside an If node's then_branch attribute
        graph = _field(1, _field(5, _field(6, graph)))
    return b"\x08\x08" + _field(7, graph)


@pytest.mark.parametrize(
    "location",
    ["/etc/passwd", "../outside.bin", "weights/../../outside.bin", "C:\\Windows\\x", "\\\\host\\share"],
)
@pytest.mark.parametrize("nested", [False, True])
def test_onnx_external_data_outside_the_folder_is_blocked(location: str, nested: bool) -> None:
    report = scan(onnx_with_external(location, nested))
    assert report.format == "onnx"
    assert report.blocked and report.block_reasons == ("external_data",)
    assert repr(location) in str(report.problems[0])


def test_onnx_external_data_inside_the_folder_passes_and_a_link_out_does_not(tmp_path: Path) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(onnx_with_external("weights/w.bin"))
    (tmp_path / "weights").mkdir()
    assert not scan(model).blocked
    (tmp_path / "weights" / "w.bin").symlink_to("/etc/hostname")
    report = scan(model)
    assert report.blocked and "a link that resolves to" in str(report.problems[0])


def test_a_first_opcode_only_the_real_unpickler_accepts_still_marks_a_pickle(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    # I0x10 is 16 to pickle.load, and a ValueError to pickletools
    stream = b"I0x10\n0cposix\nsystem\n(S'touch " + str(canary).encode() + b"'\ntR."
    pickle.loads(b"I0x10\n.")  # the premise
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("model/data/0", stream)
    report = scan(archive.getvalue())
    assert report.blocked and report.members == ("model/data/0",)
    assert not canary.exists()


def test_a_bad_crc_is_reported_and_the_member_still_scanned() -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("model/data.pkl", b"cposix\nsystem\n(S'true'\ntR.")
    data = bytearray(archive.getvalue())
    crc_at = data.index(struct.pack("<I", zlib.crc32(b"cposix\nsystem\n(S'true'\ntR.")))
    data[crc_at] ^= 0xFF
    report = scan(bytes(data), "blocklist")
    assert any("CRC" in str(problem) for problem in report.problems)
    assert any(ref.qualified == "posix.system" for ref in report.globals)


def test_weight_formats_need_no_predict() -> None:
    assert {"torch", "safetensors", "onnx", "npz", "numpy"} <= WEIGHT_FORMATS


def test_a_payload_in_a_joblib_file_is_never_loaded(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    path = tmp_path / "model.joblib"
    path.write_bytes(dumped({"w": ARRAYS["float"], "hook": RunsCode(str(canary))}, compress=3))
    for mode in ("allowlist", "blocklist"):
        with pytest.raises(ModelBlocked):
            ModelLoader(mode=mode).load(path)
    assert not canary.exists()


def _seeds() -> list[bytes]:
    """One real file of each container the scanner parses, for the mutation fuzz targets."""
    npy, npz = io.BytesIO(), io.BytesIO()
    np.save(npy, ARRAYS["structured"])
    np.savez(npz, w=ARRAYS["float"][:2], o=np.array([1, "x"], dtype=object))
    torch_zip = io.BytesIO()
    with zipfile.ZipFile(torch_zip, "w") as archive:
        archive.writestr("m/data.pkl", pickle.dumps({"w": [1.0, 2.0]}, protocol=2))
        archive.writestr("m/data/0", bytes(range(64)))
        archive.writestr("m/version", "3\n")
    return [
        dumped({"w": ARRAYS["fortran"], "n": 3}),
        dumped({"w": ARRAYS["float"][:3]}, compress=("zlib", 1)),
        npy.getvalue(),
        npz.getvalue(),
        torch_zip.getvalue(),
        safetensors_bytes(GOOD_HEADER, bytes(16)),
        onnx_with_external("weights/w.bin", nested=True),
    ]


SEEDS = _seeds()
#: One loader for every fuzzed file (building one reads the contract each time).
FUZZ_LOADER = ModelLoader(interface=Interface(methods=()), tensors="numpy")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_containers_give_a_report_or_a_clear_refusal(data: st.DataObject) -> None:
    """Every parser (joblib, compressed streams, npy, zip members, safetensors headers, ONNX
    protobuf) on mutated real input: a report, or UnsupportedModelFormat; never anything else,
    and the loader refuses or loads, with only the library's own errors."""
    mutated = bytearray(data.draw(st.sampled_from(SEEDS)))
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(mutated) - 1))
        mutated[index] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        del mutated[data.draw(st.integers(0, len(mutated) - 1)) :]
    try:
        report = scan(bytes(mutated), "allowlist")
    except UnsupportedModelFormat:
        return
    assert report.verdict in ("allowed", "blocked")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model"
        path.write_bytes(bytes(mutated))
        with contextlib.suppress(CadMetricsError):  # a refusal is fine; anything else fails
            FUZZ_LOADER.load(path)


def test_an_onnx_model_pointing_outside_its_folder_is_refused_and_counted(
    tmp_path: Path, telemetry: Telemetry, metrics: Any
) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(onnx_with_external("../../etc/passwd"))
    with pytest.raises(ModelBlocked, match="external_data"):
        ModelLoader(telemetry=telemetry).load(model)
    assert (
        metrics.value("cadmetrics_model_opcode_blocked_total", reason="external_data", mode="allowlist") == 1
    )


def test_a_zip_member_without_a_name_is_a_finding_not_a_crash() -> None:
    """zipfile's ZipInfo.is_dir raises IndexError on an empty name; the scan must not."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a", pickle.dumps({"w": 1.0}, protocol=2))
    raw = bytearray(buffer.getvalue())
    central = raw.find(b"PK\x01\x02")
    struct.pack_into("<H", raw, central + 28, 0)  # the name's length, in the central directory
    del raw[central + 46]  # and the name
    end = raw.find(b"PK\x05\x06")
    struct.pack_into("<I", raw, end + 12, struct.unpack_from("<I", raw, end + 12)[0] - 1)
    report = scan(bytes(raw))
    assert any("a member without a name" in str(problem) for problem in report.problems)


def test_a_zip_directory_claiming_several_disks_is_a_finding_not_a_crash() -> None:
    """zipfile.is_zipfile raises BadZipFile (not a boolean) on a ZIP64 locator naming several
    disks; found by the long fuzz run of the scan."""
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, 0, 2)  # ZIP64 end locator: two disks
    end = b"PK\x05\x06" + bytes(18)  # the end of central directory record
    report = scan(pickle.dumps([1, 2, 3], protocol=2)[:-1] + locator + end)
    assert any("unreadable zip archive" in str(problem) for problem in report.problems)
    assert report.blocked


def test_a_large_benign_member_is_scanned_in_one_copy_of_its_size() -> None:
    """A 64 MiB pickle of zeros packs into a few dozen KB; the scan streams the member, CRC
    included, so it holds what the pickle builds once, not the member's bytes as well."""
    import tracemalloc

    size = 64 << 20
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("blob.pkl", pickle.dumps(bytes(size), protocol=4))
    packed = buffer.getvalue()
    assert len(packed) < size // 100
    tracemalloc.start()
    try:
        report = scan(packed)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert not report.problems
    assert peak < 1.25 * size, f"peak {peak / size:.2f}x the member"


def test_an_archive_with_more_members_than_a_scan_reads_is_a_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    """A central directory repeated a hundred thousand times in a few megabytes took 15 s to
    walk; past the bound the archive is reported, not read member by member."""
    import importlib

    scan_module = importlib.import_module("cadmetrics.models.scan")  # the package's scan is the function
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for index in range(11):
            archive.writestr(f"m{index}", b"data")
    monkeypatch.setattr(scan_module, "MAX_ARCHIVE_MEMBERS", 10)
    report = scan(buffer.getvalue())
    assert any("11 members, more than the scan reads (10" in str(problem) for problem in report.problems)
    monkeypatch.setattr(scan_module, "MAX_ARCHIVE_MEMBERS", 11)
    assert not scan(buffer.getvalue()).problems
