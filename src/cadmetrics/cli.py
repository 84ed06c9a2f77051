"""The ``cadmetrics`` command line: a thin layer over the library's functions.

Exit codes: 0 all good, 1 violations found (lint errors, verification errors, breaking
changes), 2 usage or input errors. Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cadmetrics.contract.compose import load_contract
from cadmetrics.errors import CadMetricsError

OK, VIOLATIONS, USAGE = 0, 1, 2
#: What a shell reports for a command whose reader went away (128 + SIGPIPE).
CLOSED_PIPE = 141


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cadmetrics",
        description="CAD feature extraction, safe model loading and vector storage, "
        "observed through one metrics contract.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _add_contract_commands(commands)
    _add_check_commands(commands)

    scan_p = commands.add_parser(
        "scan",
        help="scan model files (pickle, joblib, PyTorch, numpy, safetensors, ONNX) without loading them",
    )
    scan_p.add_argument("paths", nargs="+", metavar="PATH", help="files, or directories to walk")
    scan_p.add_argument(
        "--mode",
        default="allowlist",
        help="allowlist (default: vetted classes and functions only), blocklist (known techniques) or audit",
    )
    scan_p.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="MODULE.NAME",
        help="admit this exact class or function (repeatable; a module or package is refused)",
    )
    scan_p.add_argument(
        "--block",
        action="append",
        default=[],
        metavar="MODULE.NAME",
        help="add to the blocklist (repeatable)",
    )
    scan_p.add_argument("--json", action="store_true", help="print the reports as JSON")

    extract_p = commands.add_parser(
        "extract", help="feature vectors of CAD files (STL, OBJ, PLY, STEP, IGES, DXF)"
    )
    extract_p.add_argument("paths", nargs="+", metavar="PATH", help="files, or directories to walk")
    extract_p.add_argument("--version", default="v4", help="feature version, v1 to v4 (default v4)")
    extract_p.add_argument(
        "--unit", help="length unit of size features, e.g. mm or in (default: each file's own)"
    )
    extract_p.add_argument(
        "--brep", action="store_true", help="STEP and IGES parts in the B-Rep layout instead of the mesh one"
    )
    extract_p.add_argument("--json", action="store_true", help="print the vectors as JSON")

    _add_vectors_commands(commands)

    demo_p = commands.add_parser(
        "demo", help="a walk through the library on CAD files, metrics served and verified"
    )
    _contract_option(demo_p)
    demo_p.add_argument("--port", type=int, help="serve /metrics on this port (0: any free one)")
    demo_p.add_argument("--duration", type=float, default=60.0, help="seconds to serve (default 60)")
    demo_p.add_argument("--samples", type=Path, help="a folder of CAD files (default: the shared samples)")
    demo_p.add_argument("--prometheus", action="store_true", help="start a local Prometheus scraping it")
    return parser


def _add_contract_commands(commands: Any) -> None:
    """``contract lint|verify|diff|docs|infer``."""
    contract = commands.add_parser("contract", help="lint, verify, diff and document the contract")
    actions = contract.add_subparsers(dest="action", required=True, metavar="ACTION")

    lint_p = actions.add_parser("lint", help="check contract files against the lint rules")
    lint_p.add_argument("paths", nargs="*", metavar="PATH", help="host contract files (default: none)")
    lint_p.add_argument(
        "--standalone", action="store_true", help="lint PATHs alone, without the library's contract"
    )
    lint_p.add_argument("--json", action="store_true", help="print findings as JSON")

    verify_p = actions.add_parser("verify", help="verify a Prometheus exposition against the contract")
    verify_p.add_argument(
        "--exposition",
        required=True,
        metavar="FILE|URL",
        help="exposition text: a file, - for stdin, or an http(s) URL",
    )
    _contract_option(verify_p)
    verify_p.add_argument(
        "--require-all", action="store_true", help="declared metrics never emitted are errors"
    )
    _standalone_option(verify_p)
    verify_p.add_argument(
        "--traces",
        action="append",
        default=[],
        metavar="FILE",
        help="also verify the spans of a serialized OTLP ExportTraceServiceRequest (repeatable)",
    )
    verify_p.add_argument(
        "--coverage",
        action="store_true",
        help="list the declared metrics and closed label values never emitted",
    )
    verify_p.add_argument(
        "--coverage-min",
        "--metrics-coverage-min",
        type=float,
        metavar="RATIO",
        help="exit 1 when fewer than RATIO (0 to 1) of the declared metrics were emitted",
    )
    verify_p.add_argument("--json", action="store_true", help="print the report as JSON")

    infer_p = actions.add_parser("infer", help="draft a contract from what an application already exports")
    infer_p.add_argument(
        "--exposition",
        action="append",
        default=[],
        metavar="FILE|URL",
        help="exposition text (classic or OpenMetrics): a file, - for stdin, or an http(s) URL (repeatable)",
    )
    infer_p.add_argument(
        "--otlp",
        action="append",
        default=[],
        metavar="FILE",
        help="a serialized OTLP ExportMetricsServiceRequest (repeatable)",
    )
    infer_p.add_argument(
        "--registry",
        metavar="MODULE:NAME",
        help="a live prometheus_client registry, imported (its module's code runs): label names and "
        "buckets of metrics without series are kept",
    )
    infer_p.add_argument(
        "--update", metavar="CONTRACT", help="draft only what CONTRACT lacks, as additions to it"
    )
    infer_p.add_argument(
        "--closed-max",
        type=int,
        default=10,
        metavar="N",
        help="a label with at most N distinct values seen is drafted as a closed set (default 10)",
    )
    infer_p.add_argument(
        "--draft-version", default="0.1.0", metavar="SEMVER", help="the draft's version (default 0.1.0)"
    )
    infer_p.add_argument("--output", metavar="FILE", help="write to FILE instead of stdout")

    diff_p = actions.add_parser(
        "diff", help="list breaking and compatible changes between two contract files"
    )
    diff_p.add_argument("old", metavar="OLD")
    diff_p.add_argument("new", metavar="NEW")
    diff_p.add_argument("--json", action="store_true", help="print the changes as JSON")

    docs_p = actions.add_parser("docs", help="render the Markdown reference of every metric")
    _contract_option(docs_p)
    docs_p.add_argument("--output", metavar="FILE", help="write to FILE instead of stdout")
    docs_p.add_argument("--check", metavar="FILE", help="exit 1 if FILE differs from a fresh rendering")


def _add_check_commands(commands: Any) -> None:
    """``check dashboards|rules``: PromQL in dashboards and rule files against the contract."""
    check_p = commands.add_parser(
        "check", help="check the PromQL of dashboards and rules against the contract"
    )
    targets = check_p.add_subparsers(dest="target", required=True, metavar="TARGET")
    for target, what, walked in (
        ("dashboards", "Grafana dashboards", "*.json"),
        ("rules", "Prometheus rule files", "*.yaml and *.yml"),
    ):
        target_p = targets.add_parser(target, help=f"check {what}")
        target_p.add_argument(
            "paths", nargs="+", metavar="PATH", help=f"files, or directories to walk for {walked}"
        )
        _contract_option(target_p)
        _standalone_option(target_p)
        target_p.add_argument(
            "--scrape-label",
            action="append",
            default=[],
            metavar="LABEL",
            help="a target label Prometheus adds to every series, besides job and instance (repeatable)",
        )
        if target == "dashboards":
            target_p.add_argument(
                "--rules",
                action="append",
                default=[],
                metavar="PATH",
                help="rule files whose recorded series the dashboards may use (repeatable)",
            )
        target_p.add_argument("--json", action="store_true", help="print the findings as JSON")


def _add_vectors_commands(commands: Any) -> None:
    """``vectors stats|migrate`` and ``drift``."""
    vectors_p = commands.add_parser("vectors", help="inspect a vector store, migrate it to another version")
    vector_actions = vectors_p.add_subparsers(dest="action", required=True, metavar="ACTION")
    stats_p = vector_actions.add_parser("stats", help="records per version, segments, pending migration")
    stats_p.add_argument("path", metavar="PATH", help="the store's directory")
    stats_p.add_argument("--verify", action="store_true", help="re-read every file against its CRC-32")
    stats_p.add_argument("--json", action="store_true", help="print the statistics as JSON")
    migrate_p = vector_actions.add_parser("migrate", help="move every record to another feature version")
    migrate_p.add_argument("path", metavar="PATH", help="the store's directory")
    migrate_p.add_argument("--to", required=True, metavar="VERSION", help="the target version (v1 to v4)")
    migrate_p.add_argument("--dry-run", action="store_true", help="print the plan and change nothing")
    migrate_p.add_argument("--batch-size", type=int, default=10_000, help="records per checkpoint")
    migrate_p.add_argument("--json", action="store_true", help="print the plan and result as JSON")

    drift_p = commands.add_parser("drift", help="compare a store's vectors with a drift baseline")
    drift_p.add_argument("path", metavar="PATH", help="the store's directory")
    drift_p.add_argument("--baseline", required=True, metavar="FILE", help="the baseline file (.npz)")
    drift_p.add_argument("--make", action="store_true", help="make the baseline from the store and save it")
    drift_p.add_argument("--version", help="feature version (default: the baseline's, or the largest)")
    drift_p.add_argument("--window", type=int, default=500, help="vectors per window (default 500)")
    drift_p.add_argument(
        "--threshold", type=float, default=0.2, help="PSI above which a group has drifted (default 0.2)"
    )
    drift_p.add_argument("--json", action="store_true", help="print the last window's report as JSON")


def _contract_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--contract",
        action="append",
        default=[],
        metavar="PATH",
        help="a host contract file added to the library's (repeatable)",
    )


def _standalone_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--standalone",
        action="store_true",
        help="the --contract files alone, without the library's contract and plugins'",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "scan":
            from cadmetrics.commands.scan import run_scan

            return run_scan(
                args.paths,
                mode_name=args.mode,
                allow=args.allow,
                block=args.block,
                as_json=args.json,
                out=sys.stdout,
                err=sys.stderr,
            )
        if args.command == "extract":
            from cadmetrics.commands.extract import run_extract

            return run_extract(
                args.paths,
                version=args.version,
                as_json=args.json,
                out=sys.stdout,
                err=sys.stderr,
                unit=args.unit,
                brep=args.brep,
            )
        if args.command == "vectors":
            from cadmetrics.commands.vectors import run_migrate, run_stats

            if args.action == "stats":
                return run_stats(args.path, verify=args.verify, as_json=args.json, out=sys.stdout)
            return run_migrate(
                args.path,
                to=args.to,
                dry_run=args.dry_run,
                batch_size=args.batch_size,
                as_json=args.json,
                out=sys.stdout,
            )
        if args.command == "drift":
            from cadmetrics.commands.drift import run_drift

            return run_drift(
                args.path,
                baseline_file=args.baseline,
                make=args.make,
                version=args.version,
                window=args.window,
                threshold=args.threshold,
                as_json=args.json,
                out=sys.stdout,
            )
        if args.command == "check":
            from cadmetrics.commands.check import run_check

            return run_check(
                args.target,
                args.paths,
                contract_paths=args.contract,
                standalone=args.standalone,
                scrape_labels=args.scrape_label,
                rules=getattr(args, "rules", []),
                as_json=args.json,
                out=sys.stdout,
                err=sys.stderr,
            )
        if args.command == "demo":
            from cadmetrics.demo import run_demo

            passed = run_demo(
                load_contract(*args.contract),
                sys.stdout,
                port=args.port if args.port is not None else (0 if args.prometheus else None),
                duration=args.duration,
                samples=args.samples,
                prometheus=args.prometheus,
            )
            return OK if passed else VIOLATIONS
        from cadmetrics.commands.contract import run_contract

        return run_contract(args, sys.stdout)
    except CadMetricsError as exc:
        print(f"cadmetrics: error: {exc}", file=sys.stderr)
        return USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return _reader_gone()


def _reader_gone() -> int:
    """The reader of standard output left (``cadmetrics ... | head``): stop quietly. Standard
    output goes to /dev/null first, so that the interpreter's final flush of what is still
    buffered does not fail again on the way out."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return CLOSED_PIPE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
