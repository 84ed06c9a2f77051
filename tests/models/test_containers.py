"""Malicious payloads in every container a team ships, and benign files the frameworks write.

* every live ``ContainerPayload`` and gadget really creates its canary under its natural loader
  (joblib.load, np.load, torch.load, a member-unpickling zip reader, pickle.load) in a child
  process, and every one marked not live really does not;
* ``scan`` blocks every one of them in allowlist and in blocklist mode, from bytes and from a
  file under the name a victim receives it by, and creates no canary;
* ``scan`` allows every benign file in both blocking modes;
* the torch-format writer is byte-exact: it rewrites a real torch file identically, and (where
  torch is installed) writes what ``torch.save`` writes.
"""

from __future__ import annotations

import collections
import importlib.util
import io
import os
import pickle
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from cadmetrics.models import Mode, scan
from tests.models import benign
from tests.models.containers import (
    CONTAINER_PAYLOADS,
    CONTAINERS,
    GADGETS,
    TECHNIQUES,
    ContainerPayload,
    NaturalLoader,
    Reducer,
    TorchTensor,
    TorchZipWriter,
    build_for,
    canary_for,
    run_natural_loaders,
    state_dict,
    torch_legacy_save,
    torch_save,
    torchscript_archive,
)

ENTRIES = CONTAINER_PAYLOADS + GADGETS
SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "model-samples"


def _require(modules: tuple[str, ...]) -> None:
    for module in modules:
        pytest.importorskip(module)


def _runnable(entry: ContainerPayload) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in entry.load_requires)


class Liveness:
    """Loads every entry this environment can load with its natural loader, all in one child
    process (so torch is imported once), each from its own folder with its own canary, the
    first time a test asks; then answers from what happened."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.outcomes: dict[str, str] = {}
        self._canaries: dict[str, Path] = {}

    def _run(self) -> None:
        jobs: list[tuple[NaturalLoader, Path]] = []
        paths: dict[str, Path] = {}
        for index, entry in enumerate(ENTRIES):
            if not _runnable(entry):
                continue
            folder = self.root / f"{index:03d}"
            folder.mkdir()
            canary = canary_for(entry, folder)
            path = folder / entry.filename
            path.write_bytes(build_for(entry, canary))
            jobs.append((entry.natural_loader, path))
            self._canaries[entry.name] = canary
            paths[entry.name] = path
        results = run_natural_loaders(jobs)
        self.outcomes = {name: results.get(str(path), "no result") for name, path in paths.items()}

    def ran(self, entry: ContainerPayload) -> bool:
        if not self._canaries:
            self._run()
        return self._canaries[entry.name].exists()


@pytest.fixture(scope="module")
def liveness(tmp_path_factory: pytest.TempPathFactory) -> Liveness:
    return Liveness(tmp_path_factory.mktemp("liveness"))


def _ids(entry: ContainerPayload) -> str:
    return entry.name


# -- the payloads are real --------------------------------------------------------------------


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e.live], ids=_ids)
def test_every_live_payload_runs_under_its_natural_loader(
    entry: ContainerPayload, liveness: Liveness
) -> None:
    _require(entry.load_requires)  # the torch ones run in an environment with torch
    assert liveness.ran(entry), f"{entry.name} is not a working attack: {liveness.outcomes[entry.name]}"


@pytest.mark.parametrize("entry", [e for e in ENTRIES if not e.live], ids=_ids)
def test_payloads_marked_not_live_do_not_run_under_their_natural_loader(
    entry: ContainerPayload, liveness: Liveness
) -> None:
    _require(entry.load_requires)
    assert not liveness.ran(entry), f"{entry.name} runs after all: mark it live"


def test_the_matrix_composes_every_container_with_every_technique() -> None:
    assert len(CONTAINER_PAYLOADS) == len(CONTAINERS) * len(TECHNIQUES)
    assert {t.name for t in TECHNIQUES} >= {"os.system", "subprocess.Popen"}
    assert sum(not t.blocklisted for t in TECHNIQUES) >= 2
    assert len(GADGETS) >= 12
    assert len({e.name for e in ENTRIES}) == len(ENTRIES)


def test_lying_extensions_carry_the_content_they_hide(tmp_path: Path) -> None:
    by_name = {e.name.split(" / ")[0]: e for e in CONTAINER_PAYLOADS if e.technique == "os.system"}
    for name in (
        "raw pickle named model.safetensors",
        "raw pickle named weights.bin",
        "raw pickle named model.pt",
    ):
        data = build_for(by_name[name], tmp_path / "canary")
        assert data[:1] == pickle.PROTO and not zipfile.is_zipfile(io.BytesIO(data))
    assert by_name["torch zip named model.pkl"].filename == "model.pkl"
    assert build_for(by_name["torch zip named model.pkl"], tmp_path / "canary")[:4] == b"PK\x03\x04"


# -- the scan blocks them ---------------------------------------------------------------------


def _blocking_cases() -> Iterator[Any]:
    """Both modes for every entry: the blocklist, found by analysing the libraries' sources,
    knows the file-writing gadgets too, not only the techniques every blocklist names."""
    for entry in ENTRIES:
        for mode in (Mode.ALLOWLIST, Mode.BLOCKLIST):
            for source in ("bytes", "file"):
                yield pytest.param(entry, mode, source, id=f"{entry.name}-{mode.value}-{source}")


@pytest.mark.parametrize(("entry", "mode", "source"), list(_blocking_cases()))
def test_scan_blocks_every_payload_and_runs_none(
    entry: ContainerPayload, mode: Mode, source: str, tmp_path: Path
) -> None:
    _require(entry.requires)
    canary = canary_for(entry, tmp_path)
    data = build_for(entry, canary)
    if source == "file":
        path = tmp_path / entry.filename  # under the name a victim receives it by
        path.write_bytes(data)
        report = scan(path, mode)
    else:
        report = scan(data, mode)
    assert report.blocked, report.render()
    assert not canary.exists()


# -- the scan lets benign files through -------------------------------------------------------


@pytest.fixture(scope="module")
def benign_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("benign")


def _benign_file(spec: benign.BenignSpec, folder: Path) -> benign.BenignFile:
    _require(spec.requires)
    return spec.make(folder)  # the models are fitted once; writing again is cheap


@pytest.mark.parametrize("spec", benign.SPECS, ids=lambda s: s.name)
def test_benign_files_are_what_their_framework_reads_back(
    spec: benign.BenignSpec, benign_folder: Path
) -> None:
    file = _benign_file(spec, benign_folder)
    _require(file.requires)
    assert benign.matches(file)


@pytest.mark.parametrize("mode", [Mode.BLOCKLIST, Mode.ALLOWLIST])
@pytest.mark.parametrize("spec", benign.SPECS, ids=lambda s: s.name)
def test_scan_allows_every_benign_file(spec: benign.BenignSpec, mode: Mode, benign_folder: Path) -> None:
    file = _benign_file(spec, benign_folder)
    report = scan(file.path, mode)
    assert not report.blocked, report.render()


def test_generate_writes_every_available_spec(tmp_path: Path) -> None:
    files = benign.generate(tmp_path)
    assert [f.name for f in files] == [s.name for s in benign.SPECS if s.available()]
    assert all(f.path.is_file() for f in files)


# -- the torch writer is byte-exact -----------------------------------------------------------


@pytest.mark.skipif(not (SAMPLES / "edgeconv_state_dict.pt").exists(), reason="no real torch samples here")
@pytest.mark.parametrize("sample", ["edgeconv_state_dict.pt", "edgeconv_checkpoint.pt", "mixed_dtypes.pt"])
def test_zip_writer_rewrites_a_real_torch_file_byte_for_byte(sample: str) -> None:
    original = (SAMPLES / sample).read_bytes()
    with zipfile.ZipFile(io.BytesIO(original)) as archive:
        names = archive.namelist()
        prefix = names[0].split("/")[0]
        writer = TorchZipWriter(prefix)
        for name in names:
            short = name.removeprefix(f"{prefix}/")
            if short not in ("version", ".data/serialization_id"):  # the writer adds those
                writer.write(short, archive.read(name))
    assert writer.finish() == original


def test_the_clean_archive_passes_zipfile_and_the_bad_crc_one_does_not(tmp_path: Path) -> None:
    clean = torch_save(state_dict())
    with zipfile.ZipFile(io.BytesIO(clean)) as archive:
        assert archive.testzip() is None
        assert archive.namelist()[0] == "archive/data.pkl"
    payload = next(e for e in CONTAINER_PAYLOADS if e.name.startswith("tampered zip: bad CRC"))
    with zipfile.ZipFile(io.BytesIO(build_for(payload, tmp_path / "canary"))) as archive:
        assert archive.testzip() == "archive/data.pkl"


def _torch_state_dict(torch: Any, extra: Mapping[str, object]) -> collections.OrderedDict[str, object]:
    ours = state_dict()
    theirs: collections.OrderedDict[str, object] = collections.OrderedDict(
        (name, torch.from_numpy(t.array.copy()) if isinstance(t, TorchTensor) else t)
        for name, t in ours.items()
    )
    theirs.update(extra)
    theirs._metadata = ours._metadata  # type: ignore[attr-defined]
    return theirs


def test_torch_writers_match_torch_save_byte_for_byte() -> None:
    torch = pytest.importorskip("torch")
    payload = {"fc._extra_state": Reducer(os.system, "touch /nonexistent/canary")}
    for extra in ({}, payload):
        buffer = io.BytesIO()
        torch.save(_torch_state_dict(torch, extra), buffer)
        assert torch_save(state_dict(extra)) == buffer.getvalue()
    legacy = io.BytesIO()
    torch.save(_torch_state_dict(torch, payload), legacy, _use_new_zipfile_serialization=False)
    legacy.seek(0)
    for _ in range(3):
        pickle.load(legacy)
    keys: list[str] = []

    class Keys(pickle.Unpickler):
        def persistent_load(self, pid: Any) -> None:
            keys.append(pid[2])

        def find_class(self, module: str, name: str) -> Any:
            return _Inert

    Keys(legacy).load()
    assert torch_legacy_save(state_dict(payload), keys) == legacy.getvalue()


class _Inert:
    def __init__(self, *args: object) -> None:
        pass

    def __setitem__(self, key: object, value: object) -> None:
        pass

    def __setstate__(self, state: object) -> None:
        pass


def test_the_torchscript_archive_is_real_torchscript(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    path = tmp_path / "scaler.pt"
    path.write_bytes(torchscript_archive())
    module = torch.jit.load(str(path))
    assert module(torch.ones(3)).tolist() == [1.0, 2.0, 3.0]
