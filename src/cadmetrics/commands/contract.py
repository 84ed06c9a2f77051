"""``cadmetrics contract lint|verify|diff|docs|infer``: the contract's own commands."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, TextIO

from cadmetrics.contract.compose import load_contract
from cadmetrics.contract.declarations import Declarations, read_declarations
from cadmetrics.contract.diff import diff_contracts
from cadmetrics.contract.docs import render_markdown
from cadmetrics.contract.draft import render_draft
from cadmetrics.contract.infer import infer_contract
from cadmetrics.contract.lint import Severity, lint
from cadmetrics.contract.model import Contract
from cadmetrics.contract.observed import Observation, from_exposition, from_otlp, from_registry
from cadmetrics.contract.traces import from_otlp_traces, verify_spans
from cadmetrics.contract.verify import verify
from cadmetrics.errors import InputError

OK, VIOLATIONS = 0, 1


def command_contract(paths: list[str], *, standalone: bool = False) -> Contract:
    """The contract a command checks against: the library's plus ``paths`` (and installed
    plugins'), or, with ``standalone``, the host's ``paths`` alone."""
    if standalone:
        if not paths:
            raise InputError("--standalone needs the host's contract: give it with --contract PATH")
        return load_contract(*paths, library=False, entry_points=False)
    return load_contract(*paths)


def run_contract(args: argparse.Namespace, out: TextIO) -> int:
    if args.action == "lint":
        return _lint(args, out)
    if args.action == "verify":
        return _verify(args, out)
    if args.action == "diff":
        result = diff_contracts(_standalone(args.old), _standalone(args.new))
        print(result.to_json() if args.json else result.render(), file=out)
        return VIOLATIONS if result.breaking else OK
    if args.action == "infer":
        return _infer(args, out)
    return _docs(args, out)


def _verify(args: argparse.Namespace, out: TextIO) -> int:
    minimum = args.coverage_min
    if minimum is not None and not 0.0 <= minimum <= 1.0:
        raise InputError(f"--coverage-min must be a ratio between 0 and 1, not {minimum}")
    contract = command_contract(args.contract, standalone=args.standalone)
    text = read_exposition(args.exposition)
    report = verify(from_exposition(text, args.exposition), contract, require_all=args.require_all)
    spans = None
    if args.traces:
        spans = verify_spans([from_otlp_traces(_read_bytes(path), path) for path in args.traces], contract)
    show_coverage = args.coverage or minimum is not None
    if args.json:
        found = report.to_dict()
        if spans is not None:
            found["spans"] = spans.to_dict()
        print(json.dumps(found, indent=2), file=out)
    else:
        print(report.render(coverage=show_coverage), file=out)
        if spans is not None:
            print(spans.render(coverage=show_coverage), file=out)
    ratio = report.coverage.ratio if report.coverage is not None else 1.0
    below = minimum is not None and ratio < minimum
    if below and not args.json:
        print(f"coverage {ratio:.1%} is below the required {minimum:.1%}", file=out)
    spans_ok = spans is None or spans.ok
    return OK if report.ok and spans_ok and not below else VIOLATIONS


def _lint(args: argparse.Namespace, out: TextIO) -> int:
    contract = load_contract(*args.paths, library=not args.standalone or not args.paths, check=False)
    findings = lint(contract)
    if args.json:
        print(json.dumps([f.to_dict() for f in findings], indent=2), file=out)
    else:
        for finding in findings:
            print(f"{finding.severity.value}: {finding}", file=out)
        files = ", ".join(part.path for part in contract.parts)
        print(f"{len(contract)} metrics in {files}: {len(findings)} finding(s)", file=out)
    return VIOLATIONS if any(f.severity is Severity.ERROR for f in findings) else OK


def _docs(args: argparse.Namespace, out: TextIO) -> int:
    text = render_markdown(load_contract(*args.contract))
    if args.check:
        current = read_text(args.check)
        if current != text:
            print(
                f"{args.check} is stale: regenerate it with `cadmetrics contract docs --output {args.check}`",
                file=out,
            )
            return VIOLATIONS
        return OK
    _write_or_print(text, args.output, out)
    return OK


def _infer(args: argparse.Namespace, out: TextIO) -> int:
    if not (args.exposition or args.otlp or args.registry):
        raise InputError(
            "contract infer needs a source: --exposition FILE|URL, --otlp FILE or --registry MODULE:NAME"
        )
    if args.closed_max < 0:
        raise InputError(f"--closed-max must be 0 or more, not {args.closed_max}")
    empty = Contract(parts=(), metrics=())
    observations: list[Observation] = [from_exposition(read_exposition(s), s) for s in args.exposition]
    for path in args.otlp:
        observations.append(from_otlp(_read_bytes(path), empty, origin=path))
    declarations: Declarations | None = None
    if args.registry:
        registry = _import_registry(args.registry)
        observations.append(from_registry(registry, args.registry))
        declarations = read_declarations(registry)
    existing = _standalone(args.update) if args.update else None
    draft = infer_contract(
        observations,
        declarations,
        existing=existing,
        closed_max=args.closed_max,
        version=args.draft_version,
    )
    _write_or_print(render_draft(draft), args.output, out)
    return OK


def _import_registry(target: str) -> Any:
    """The registry named ``MODULE:NAME`` (its module imported, which runs its code: the
    application's own metric definitions register as it loads)."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise InputError(f"--registry {target!r}: give it as MODULE:NAME, e.g. myapp.metrics:REGISTRY")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InputError(f"--registry {target!r}: cannot import {module_name}: {exc}") from None
    registry = getattr(module, attribute, None)
    if registry is None or not callable(getattr(registry, "collect", None)):
        raise InputError(f"--registry {target!r}: {module_name} has no registry named {attribute}")
    return registry


def _standalone(path: str) -> Contract:
    return load_contract(path, library=False, entry_points=False, check=False)


def _write_or_print(text: str, output: str | None, out: TextIO) -> None:
    if output:
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot write {output}: {exc}") from None
    else:
        out.write(text)


def read_text(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None


def _read_bytes(path: str) -> bytes:
    try:
        return sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc}") from None


def read_exposition(source: str) -> str:
    """Exposition text from a file, ``-`` (standard input) or an http(s) URL."""
    if source == "-":
        return sys.stdin.read()
    if source.startswith(("http://", "https://")):
        request = urllib.request.Request(source, headers={"Accept": "text/plain;version=0.0.4"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                body: bytes = response.read()
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise InputError(f"cannot fetch {source}: {exc}") from None
        return body.decode("utf-8", errors="replace")
    return read_text(source)
