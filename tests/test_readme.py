"""Every Python and shell block of README.md runs as written.

Blocks are found by a Markdown parser (markdown-it-py), not by pattern. An HTML comment right
before a block (``<!-- readme-test: ... -->``, invisible on a rendered page) declares what the
block may assume; nothing else is filled in:

- ``needs=a,b``: Python names the reader brings (their own file list, an executor, a probe
  input), bound from :data:`PLACEHOLDERS` just before the block runs;
- ``files=x,y``: files in the working directory, written from :data:`FILES` (real CAD and
  model files from the shared samples, a malicious pickle, an application's exposition);
- ``pytest``: the block is a test module of a host, run by pytest with the plugin;
- ``at=root``: a shell block run at the repository's root (the quick start);
- ``run-by=FILE``: the block is what FILE runs (CI's own command), so it is checked to be there
  rather than run again from inside itself.

The Python blocks run in order in one fresh interpreter and one namespace, as a reader going
down the page would run them; tracebacks name README.md's own lines.
"""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest

from tests.conftest import CAD_SAMPLES, REPOSITORY

README = REPOSITORY / "README.md"
MODEL_SAMPLES = REPOSITORY.parent / "shared" / "model-samples"

#: Python set-up for each name a block may declare with ``needs=``.
PLACEHOLDERS: dict[str, str] = {
    "paths": "paths = ['bracket.stl', 'part.stl']",
    "pool": "import concurrent.futures\npool = concurrent.futures.ThreadPoolExecutor(2)",
    "probe": "import numpy\nprobe = numpy.zeros((1, 4))",
    "ids": "ids = [f'bulk-{n}' for n in range(2000)]",
    "matrix": (
        "import numpy\nmatrix = numpy.random.default_rng(7).normal(1.0, 0.2, (2000, 49)).astype('float32')"
    ),
    "queries": "import numpy\nqueries = numpy.random.default_rng(8).normal(1.0, 0.2, (5, 49))",
    "new_vectors": (
        "import numpy\n"
        "new_vectors = numpy.random.default_rng(9).normal(1.6, 0.2, (1000, 46)).astype('float32')"
    ),
}


def _copy(source: Path) -> Callable[[Path], None]:
    def write(target: Path) -> None:
        if not source.is_file():
            pytest.skip(f"shared sample {source} not found (expected beside the repository)")
        shutil.copyfile(source, target)

    return write


def _classifier(seed: int) -> Callable[[Path], None]:
    def write(target: Path) -> None:
        joblib = pytest.importorskip("joblib")
        linear = pytest.importorskip("sklearn.linear_model")
        import numpy

        rng = numpy.random.default_rng(seed)
        features = rng.normal(size=(40, 4))
        model = linear.LogisticRegression().fit(features, (features[:, 0] > 0).astype(int))
        joblib.dump(model, target)

    return write


class _Payload:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("true",))


def _evil_pickle(target: Path) -> None:
    target.write_bytes(pickle.dumps(_Payload()))


def _exposition(target: Path) -> None:
    pytest.importorskip("prometheus_client")
    sys.modules.pop("tests.contract.platform_app", None)
    from tests.contract import platform_app

    platform_app.serve_some_traffic()
    target.write_text(platform_app.exposition(), encoding="utf-8")
    sys.modules.pop("tests.contract.platform_app", None)


#: How each file a block may declare with ``files=`` is made.
FILES: dict[str, Callable[[Path], None]] = {
    "bracket.stl": _copy(CAD_SAMPLES / "stl" / "angle_block.STL"),
    "part.stl": _copy(CAD_SAMPLES / "stl" / "plate_holes.STL"),
    "model.pt": _copy(MODEL_SAMPLES / "edgeconv_state_dict.pt"),
    "checkpoint.pt": _copy(MODEL_SAMPLES / "edgeconv_checkpoint.pt"),
    "classifier.joblib": _classifier(1),
    "classifier-v2.joblib": _classifier(2),
    "evil.pkl": _evil_pickle,
    "metrics.prom": _exposition,
}


@attrs.frozen
class Block:
    language: str
    code: str
    line: int  # of the first line of code, 1-based
    needs: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    flags: frozenset[str] = frozenset()
    at: str | None = None
    run_by: str | None = None


def readme_blocks() -> list[Block]:
    from markdown_it import MarkdownIt

    tokens = MarkdownIt().parse(README.read_text(encoding="utf-8"))
    blocks: list[Block] = []
    directive = ""
    for token in tokens:
        if token.type == "html_block" and token.content.strip().startswith("<!-- readme-test:"):
            directive = token.content.strip().removeprefix("<!-- readme-test:").removesuffix("-->")
            continue
        if token.type == "fence":
            assert token.map is not None
            blocks.append(_block(token.info.strip(), token.content, token.map[0] + 2, directive))
        directive = ""
    return blocks


def _block(language: str, code: str, line: int, directive: str) -> Block:
    fields: dict[str, str] = {}
    flags: set[str] = set()
    for word in directive.split():
        key, equals, value = word.partition("=")
        if equals:
            fields[key] = value
        else:
            flags.add(key)
    unknown = set(fields) - {"needs", "files", "at", "run-by"} | flags - {"pytest"}
    assert not unknown, f"README.md:{line}: unknown readme-test words {sorted(unknown)}"

    def names(key: str) -> tuple[str, ...]:
        return tuple(name for name in fields.get(key, "").split(",") if name)

    return Block(
        language,
        code,
        line,
        names("needs"),
        names("files"),
        frozenset(flags),
        fields.get("at"),
        fields.get("run-by"),
    )


BLOCKS = readme_blocks()
PYTHON = [block for block in BLOCKS if block.language == "python" and "pytest" not in block.flags]


def test_every_block_is_python_or_shell_and_declares_only_what_the_test_provides() -> None:
    assert BLOCKS, "README.md has no code blocks"
    for block in BLOCKS:
        where = f"README.md:{block.line}"
        assert block.language in ("python", "sh"), f"{where}: a {block.language or 'bare'} block"
        assert set(block.needs) <= set(PLACEHOLDERS), f"{where}: undeclared placeholder"
        assert set(block.files) <= set(FILES), f"{where}: a file the test does not make"
        for name in (*block.needs, *block.files):
            assert name in block.code, f"{where}: declares {name!r} but does not use it"


def _prepare(directory: Path, blocks: list[Block]) -> None:
    for block in blocks:
        for name in block.files:
            if not (directory / name).exists():
                FILES[name](directory / name)


def _run(command: list[str], where: Path) -> subprocess.CompletedProcess[str]:
    """``command`` in ``where``, with the test environment's commands and the repository on the
    paths, as a reader's shell would have them."""
    return subprocess.run(
        command, cwd=where, env=_environment(), capture_output=True, text=True, timeout=600, check=False
    )


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPOSITORY), env.get("PYTHONPATH", "")]))
    return env


def test_the_python_blocks_run_in_order(tmp_path: Path) -> None:
    for module in ("prometheus_client", "opentelemetry.sdk.trace", "redis", "sklearn", "pythonjsonlogger"):
        pytest.importorskip(module)
    _prepare(tmp_path, PYTHON)
    script = ["namespace = {}"]
    for block in PYTHON:
        for name in block.needs:
            script.append(f"exec(compile({PLACEHOLDERS[name]!r}, 'placeholder {name}', 'exec'), namespace)")
        padded = "\n" * (block.line - 1) + block.code
        script.append(f"exec(compile({padded!r}, {str(README)!r}, 'exec'), namespace)")
    script.append("namespace.get('pool') and namespace['pool'].shutdown()")
    result = _run([sys.executable, "-c", "\n".join(script)], tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    # the drift loop printed a report for each of the two windows of 500 it filled
    verdicts = [line for line in result.stdout.splitlines() if line.startswith(("True ", "False "))]
    assert len(verdicts) == 2, result.stdout
    assert verdicts[0].startswith("True ")  # the new vectors were drawn from another distribution


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.language == "sh"], ids=lambda b: f"line{b.line}")
def test_the_shell_blocks_run(block: Block, tmp_path: Path) -> None:
    if block.run_by is not None:
        runner = (REPOSITORY / block.run_by).read_text(encoding="utf-8")
        for command in _commands(block.code):
            assert command in runner, f"{block.run_by} does not run {command!r}"
        return
    if any(command.startswith("cadmetrics contract") for command in _commands(block.code)):
        pytest.importorskip("prometheus_client")
    _prepare(tmp_path, [block])
    where = REPOSITORY if block.at == "root" else tmp_path
    result = _run(["bash", "-euo", "pipefail", "-c", block.code], where)
    assert result.returncode == 0, f"README.md:{block.line}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"


def _commands(code: str) -> list[str]:
    return [line.split("#")[0].strip() for line in code.splitlines() if line.split("#")[0].strip()]


def test_the_plugin_block_passes_as_a_hosts_test(pytester: pytest.Pytester) -> None:
    pytest.importorskip("prometheus_client")
    [block] = [b for b in BLOCKS if "pytest" in b.flags]
    _prepare(pytester.path, [block])
    pytester.makepyfile(test_readme_block=textwrap.dedent(block.code))
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)
    assert result.ret == 0
