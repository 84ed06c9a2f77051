"""Reading one contract file into value types, with every error pointing at file and line.

The file is composed into YAML nodes (not constructed into plain dicts) so that each node keeps
its mark; the schema is then read node by node. A wrong key, a wrong type or a missing field
becomes a :class:`ContractLoadError` naming the rule, never a bare ``KeyError`` from deep inside.
Naming conventions are not checked here: that is :mod:`cadmetrics.contract.lint`'s job, so that
``contract lint`` can report all of them at once.
"""

from __future__ import annotations

import re
from pathlib import Path

import attrs
import yaml

from cadmetrics.contract.model import (
    DEFAULT_OPEN_LABEL_CAP,
    MULTIPROCESS_MODES,
    LabelSpec,
    MetricSpec,
    MetricType,
    SpanSpec,
    Stability,
    Unit,
)
from cadmetrics.contract.nodes import NodeReader, clip, is_null
from cadmetrics.contract.span_schema import read_span
from cadmetrics.errors import ContractLoadError

#: prometheus_client's default buckets, used when a histogram declares none, so that the
#: Prometheus and OpenTelemetry backends agree (their own defaults differ).
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)

_TOP_KEYS = ("namespace", "namespaces", "version", "extends", "metrics", "spans")
_METRIC_KEYS = (
    "name",
    "type",
    "help",
    "unit",
    "labels",
    "buckets",
    "stability",
    "replaced_by",
    "multiprocess_mode",
    "component",
    "provided_by",
)
_LABEL_KEYS = ("values", "open", "max_values")
#: The scalar shorthand of an open label with the default cap: ``tenant: open``.
_OPEN = "open"
_NAMESPACE = re.compile(r"[a-z][a-z0-9_]*")
_SEMVER = re.compile(r"\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?")

#: The most values one closed label may list (rule ``label-values-limit``). A closed set is
#: written out by hand, and each value multiplies the series a metric can export; Prometheus'
#: instrumentation guidance keeps most metrics below ten series. A set past ten thousand is an
#: open label in disguise (declare it with ``max_values``) or generated text gone wrong, and the
#: bound caps what one file makes the loader, telemetry and verification hold. A host with a real
#: need raises it before loading (``cadmetrics.contract.loader.MAX_LABEL_VALUES = ...``): the
#: loader reads it at each parse.
MAX_LABEL_VALUES = 10_000

#: Characters in one contract file. The library's own contract is about 20,000; PyYAML composes
#: 50 to 200 kilobytes a second in pure Python, so a file of megabytes (a line repeated by a
#: generator gone wrong) took tens of seconds to be refused for what it holds. Read at each
#: parse, like :data:`MAX_LABEL_VALUES`.
MAX_CONTRACT_CHARS = 400_000


@attrs.frozen
class Extends:
    """One ``extends`` entry: the resolved file, and the line of the entry that names it."""

    target: str
    line: int


@attrs.frozen
class ContractFile:
    """One parsed file: its namespaces, its own metrics and the (resolved) files it extends."""

    path: str
    namespaces: tuple[str, ...]
    version: str
    extends: tuple[Extends, ...]
    metrics: tuple[MetricSpec, ...]
    spans: tuple[SpanSpec, ...] = ()

    @property
    def namespace(self) -> str:
        """The file's main namespace: the only one, or the first listed."""
        return self.namespaces[0]


def parse_contract_text(text: str, path: str) -> ContractFile:
    """Parse contract YAML ``text``; ``path`` is used in messages and to resolve ``extends``."""
    return Reader(path).contract(text)


def parse_contract_file(path: str | Path) -> ContractFile:
    """Read and parse one contract file (its ``extends`` are resolved but not loaded)."""
    shown = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ContractLoadError(shown, 0, "file", "no such contract file") from None
    except (OSError, ValueError) as exc:  # ValueError: not UTF-8, or a NUL byte in the name
        raise ContractLoadError(shown, 0, "file", f"cannot read contract file: {exc}") from None
    return parse_contract_text(text, shown)


class Reader(NodeReader):
    """Reads the node tree of one file; ``fail`` turns any problem into a located error."""

    # -- the schema ---------------------------------------------------------------------

    def contract(self, text: str) -> ContractFile:
        if len(text) > MAX_CONTRACT_CHARS:
            raise ContractLoadError(
                self.path,
                0,
                "file-size-limit",
                f"{len(text)} characters, more than a contract file may hold ({MAX_CONTRACT_CHARS}; "
                "cadmetrics.contract.loader.MAX_CONTRACT_CHARS)",
            )
        try:
            return self._contract(text)
        except RecursionError:
            raise ContractLoadError(
                self.path, 0, "yaml-syntax", "nested too deeply to be a contract"
            ) from None

    def _contract(self, text: str) -> ContractFile:
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else 0
            raise ContractLoadError(
                self.path, line, "yaml-syntax", f"not valid YAML: {exc.problem or exc}"
            ) from None
        except yaml.YAMLError as exc:
            raise ContractLoadError(self.path, 0, "yaml-syntax", f"not valid YAML: {exc}") from None
        if root is None:
            self.fail(None, "required-key", "the contract file is empty")
        fields = self.mapping(root, "the contract", _TOP_KEYS)
        namespaces = self.namespaces(fields, root)
        version = self.string(self.required(fields, root, "version", "the contract"), "version")
        if not _SEMVER.fullmatch(version):
            self.fail(
                fields["version"],
                "semver",
                f"version {version!r} is not a semantic version (1.2.3)",
            )
        extends = self.extends(fields.get("extends"))
        metrics_node = self.required(fields, root, "metrics", "the contract")
        items = self.sequence(metrics_node, "metrics")
        metrics = tuple(self.metric(item, namespaces) for item in items)
        spans_node = fields.get("spans")
        spans: tuple[SpanSpec, ...] = ()
        if spans_node is not None and not is_null(spans_node):
            spans = tuple(read_span(self, item, namespaces) for item in self.sequence(spans_node, "spans"))
        return ContractFile(self.path, namespaces, version, extends, metrics, spans)

    def namespaces(self, fields: dict[str, yaml.Node], root: yaml.Node) -> tuple[str, ...]:
        """``namespace: app`` or ``namespaces: [app, jobs, ...]``: the name prefixes the file
        declares metrics under (and claims at verification)."""
        if ("namespace" in fields) == ("namespaces" in fields):
            self.fail(
                root,
                "required-key",
                "the contract needs exactly one of 'namespace: NAME' or 'namespaces: [NAME, ...]'",
            )
        if "namespace" in fields:
            nodes = [fields["namespace"]]
        else:
            nodes = self.sequence(fields["namespaces"], "namespaces")
            if not nodes:
                self.fail(fields["namespaces"], "required-key", "namespaces lists no namespace")
        found: dict[str, None] = {}
        for node in nodes:
            namespace = self.string(node, "namespace")
            if not _NAMESPACE.fullmatch(namespace):
                self.fail(
                    node, "namespace-format", f"namespace {clip(namespace)!r} must match [a-z][a-z0-9_]*"
                )
            if namespace in found:
                self.fail(node, "duplicate-key", f"namespace {namespace!r} is listed twice")
            found[namespace] = None
        return tuple(found)

    def extends(self, node: yaml.Node | None) -> tuple[Extends, ...]:
        if node is None:
            return ()
        base = Path(self.path).parent
        resolved = []
        for item in self.sequence(node, "extends"):
            target = Path(self.string(item, "an extends entry"))
            if not target.is_absolute():
                target = base / target
            problem = _file_problem(target)
            if problem is not None:
                self.fail(item, "extends-missing", f"extended contract {clip(str(target))!r} {problem}")
            resolved.append(Extends(str(target), item.start_mark.line + 1))
        return tuple(resolved)

    def metric(self, node: yaml.Node, namespaces: tuple[str, ...]) -> MetricSpec:
        fields = self.mapping(node, "a metric", _METRIC_KEYS)
        name = self.string(self.required(fields, node, "name", "a metric"), "name")
        what = f"metric {name!r}"
        kind = self.enum(self.required(fields, node, "type", what), MetricType, f"{what}: type")
        help_node = self.required(fields, node, "help", what)
        help_text = "" if is_null(help_node) else self.string(help_node, f"{what}: help")
        unit = self.optional(fields, "unit", lambda n: self.enum(n, Unit, f"{what}: unit"))
        stability = self.optional(
            fields, "stability", lambda n: self.enum(n, Stability, f"{what}: stability")
        )
        buckets = self.optional(fields, "buckets", lambda n: self.buckets(n, what))
        if buckets is None and kind is MetricType.HISTOGRAM:
            buckets = DEFAULT_BUCKETS
        mode = self.optional(fields, "multiprocess_mode", lambda n: self.string(n, what))
        if mode is not None and mode not in MULTIPROCESS_MODES:
            self.fail(
                fields["multiprocess_mode"],
                "enum-value",
                f"{what}: multiprocess_mode {mode!r} is not one of " + ", ".join(sorted(MULTIPROCESS_MODES)),
            )
        labels_node = fields.get("labels")
        labels = () if labels_node is None else self.labels(labels_node, what)
        return MetricSpec(
            name=name,
            type=kind,
            help=help_text.strip(),
            namespace=_namespace_of(name, namespaces),
            unit=unit or Unit.NONE,
            labels=labels,
            buckets=buckets,
            stability=stability or Stability.STABLE,
            replaced_by=self.optional(fields, "replaced_by", lambda n: self.string(n, what)),
            multiprocess_mode=mode,
            component=self.optional(fields, "component", lambda n: self.string(n, what)),
            provided_by=self.optional(fields, "provided_by", lambda n: self.string(n, what)),
            location=self.location(node),
        )

    def labels(self, node: yaml.Node, what: str) -> tuple[LabelSpec, ...]:
        if is_null(node):
            return ()
        specs = []
        for key_node, value_node in self.pairs(node, f"{what}: labels"):
            name = key_node.value
            where = f"{what}: label {name!r}"
            values, max_values = self.label(value_node, where)
            specs.append(LabelSpec(name, values, max_values, self.location(key_node)))
        return tuple(specs)

    def label(self, node: yaml.Node, where: str) -> tuple[tuple[str, ...] | None, int | None]:
        """A label's ``(values, max_values)``: a closed set, or an open one with its cap."""
        if isinstance(node, yaml.ScalarNode) and node.value == _OPEN:
            return None, DEFAULT_OPEN_LABEL_CAP
        if isinstance(node, yaml.ScalarNode):
            self.fail(
                node,
                "label-spec",
                f"{where} needs exactly one of 'values: [...]' (closed set) or 'open', "
                f"not {clip(str(node.value))!r}",
            )
        fields = self.mapping(node, where, _LABEL_KEYS)
        if "open" in fields:
            is_open = self.scalar(fields["open"], f"{where}: open")
            if is_open is not True:
                self.fail(
                    fields["open"],
                    "label-spec",
                    f"{where}: 'open' can only be true (a closed set lists its values)",
                )
        open_set = "open" in fields or "max_values" in fields
        if ("values" in fields) == open_set:
            self.fail(
                node,
                "label-spec",
                f"{where} needs exactly one of 'values: [...]' (closed set) "
                f"or 'open' (any value, at most {DEFAULT_OPEN_LABEL_CAP} distinct; "
                "'{open: true, max_values: N}' sets another cap)",
            )
        if "values" in fields:
            return self.label_values(fields["values"], where), None
        if "max_values" not in fields:
            return None, DEFAULT_OPEN_LABEL_CAP
        max_values = self.integer(fields["max_values"], f"{where}: max_values")
        if max_values < 1:
            self.fail(fields["max_values"], "label-spec", f"{where}: max_values must be >= 1")
        return None, max_values

    def label_values(self, node: yaml.Node, where: str) -> tuple[str, ...]:
        items = self.sequence(node, f"{where}: values")
        if not items:
            self.fail(node, "label-spec", f"{where}: a closed set needs at least one value")
        if len(items) > MAX_LABEL_VALUES:
            self.fail(
                node,
                "label-values-limit",
                f"{where}: a closed set of {len(items)} values is more than {MAX_LABEL_VALUES}; "
                "a label with that many values is open: declare it with 'max_values: N'",
            )
        values: dict[str, None] = {}  # ordered, and a duplicate is found in constant time
        for item in items:
            if not isinstance(item, yaml.ScalarNode) or is_null(item):
                self.fail(item, "schema-type", f"{where}: each value must be a string")
            value = str(item.value)
            if value in values:
                self.fail(item, "label-spec", f"{where}: value {clip(value)!r} is listed twice")
            values[value] = None
        return tuple(values)

    def buckets(self, node: yaml.Node, what: str) -> tuple[float, ...]:
        return tuple(self.number(item, f"{what}: buckets") for item in self.sequence(node, "buckets"))


def _namespace_of(name: str, namespaces: tuple[str, ...]) -> str:
    """The namespace ``name`` lies in: the longest of the file's that prefixes it (``app_jobs``
    before ``app``), or the file's main one when none does (lint then says so)."""
    matching = [ns for ns in namespaces if name.startswith(ns + "_")]
    return max(matching, key=len) if matching else namespaces[0]


def _file_problem(path: Path) -> str | None:
    """Why ``path`` cannot name a contract file, or None when it names a regular file.

    The one place where a name taken from a contract meets the file system: a name the system
    refuses (too long, a NUL byte) becomes a reason in the message, not an ``OSError``."""
    try:
        if path.is_file():
            return None
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return f"cannot be used as a file name ({reason})"
    return "does not exist"
