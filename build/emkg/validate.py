"""``emkg validate``: Turtle syntax, SHACL shapes (pySHACL) and QC queries, reported as ``FILE:LINE``.

The pipeline is: load (syntax problems come from ``LoadedGraph.problems``) → SHACL over
ontology + data (``run_shacl``, the one place a validation engine is called) → the SELECT queries
in ``queries/qc/`` on the pyoxigraph store → ``Result`` objects located in the sources by the
loader's index → a ``Report`` rendered as text, JSON or GitHub workflow commands.

Exit codes: 0 conforms (warnings allowed unless ``--strict``), 1 data problems (syntax errors,
violations), 2 project problems (a QC query or the shapes cannot run, a missing PATH).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path

import pyoxigraph as ox
import rdflib
from rdflib.namespace import RDF, SH

from . import shapedeps
from .cache import cache_root, code_fingerprint, hash_files, read_entry, write_entry
from .errors import EXIT_DATA, EXIT_OK, EXIT_USAGE, UsageError
from .forked import Forked
from .load import LoadedGraph, Location, SourceIndex, SyntaxProblem, literal_key, load_graph, load_shapes
from .project import Project
from .querydeps import Prefetch
from .terms import ox_to_rdflib, rdflib_to_ox

log = logging.getLogger(__name__)

SEVERITIES = ("violation", "warning", "info")
FORMATS = ("text", "json", "github")
_SEVERITY_OF = {SH.Violation: "violation", SH.Warning: "warning", SH.Info: "info"}
_XSD = "http://www.w3.org/2001/XMLSchema#"
_SH = str(SH)


# --- the report ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Result:
    """One problem found in the graph, by a shape or a QC query.

    ``focus``/``value`` are pyoxigraph terms; ``path`` is the predicate of a simple path (or of
    an inverse path) and ``path_text`` the path as written in SPARQL (full IRIs shortened).
    ``source`` names what found it: a shape (``emkgsh:X``, or ``emkgsh:X property emkg:p`` for a
    property shape without an IRI) or a QC file (``queries/qc/x.rq``); ``component`` is the SHACL
    constraint component's local name (``MinCount``, ``SPARQL``) or ``qc``.
    """

    severity: str
    message: str
    focus: ox.NamedNode | ox.BlankNode | ox.Literal | None
    path: ox.NamedNode | None
    value: ox.NamedNode | ox.BlankNode | ox.Literal | None
    source: str
    component: str
    location: Location | None = None
    path_text: str | None = None
    focus_text: str | None = None
    value_text: str | None = None
    help: str | None = None  # how to fix it, at more length (a QC query's description)

    @property
    def file(self) -> str | None:
        return self.location.file if self.location else None

    @property
    def line(self) -> int | None:
        return self.location.line if self.location else None

    def sort_key(self) -> tuple:
        loc = self.location
        return (loc is None, loc.file if loc else "", loc.line if loc else 0, self.message,
                SEVERITIES.index(self.severity), self.source, self.focus_text or "", self.value_text or "")

    def key(self) -> tuple:
        """What identifies a result independently of engine and wording (for equivalence tests)."""
        return (self.severity, _term_key(self.focus), self.path_text, _term_key(self.value), self.source, self.component)

    def details(self) -> str:
        parts = []
        if self.focus_text is not None:
            parts.append(f"focus {self.focus_text}")
        if self.path_text is not None:
            parts.append(f"path {self.path_text}")
        if self.value_text is not None:
            parts.append(f"value {self.value_text}")
        return f" ({', '.join(parts)})" if parts else ""

    def __str__(self) -> str:
        return f"{_where(self.location)}: {self.severity}: {self.message}{self.details()}"


@dataclass(frozen=True)
class ProjectProblem:
    """The project itself is broken (a QC query does not parse, the shapes cannot run): exit 2."""

    location: Location | None
    message: str
    file: str | None = None

    def __str__(self) -> str:
        where = _where(self.location) if self.location else (self.file or "emkg")
        return f"{where}: error: {self.message}"


@dataclass
class Report:
    """Everything ``validate`` found, with the counts for the summary line."""

    results: list[Result] = field(default_factory=list)
    problems: list[SyntaxProblem] = field(default_factory=list)
    errors: list[ProjectProblem] = field(default_factory=list)
    triples: int = 0
    shapes: int = 0
    checks: int = 0
    files: int = 0
    skipped: str | None = None
    seconds: float = 0.0

    def count(self, severity: str) -> int:
        return sum(1 for r in self.results if r.severity == severity)

    @property
    def violations(self) -> int:
        return self.count("violation")

    @property
    def warnings(self) -> int:
        return self.count("warning")

    @property
    def infos(self) -> int:
        return self.count("info")

    @property
    def files_with_results(self) -> int:
        return len({r.file for r in self.results if r.file is not None} | {p.location.file for p in self.problems})

    def conforms(self, strict: bool = False) -> bool:
        if self.problems or self.errors or self.violations:
            return False
        return not (strict and self.warnings)

    def exit_code(self, strict: bool = False) -> int:
        if self.errors:
            return EXIT_USAGE
        return EXIT_OK if self.conforms(strict) else EXIT_DATA

    def summary(self) -> str:
        if self.problems:
            files = len({p.location.file for p in self.problems})
            text = (f"{_plural(len(self.problems), 'syntax error')} in {_plural(files, 'file')}; "
                    f"SHACL and QC checks skipped (the graph is incomplete until every file parses)")
        elif not self.results:
            text = f"conforms: {self.triples} triples, {_plural(self.shapes, 'shape')}, {_plural(self.checks, 'check')}"
        else:
            counts = [_plural(self.violations, "violation"), _plural(self.warnings, "warning")]
            if self.infos:
                counts.append(_plural(self.infos, "info"))
            text = f"{', '.join(counts)} in {_plural(self.files_with_results, 'file')} ({self.triples} triples checked)"
        if self.errors:
            text += f"; {_plural(len(self.errors), 'project error')} (exit 2)"
        return text

    def summary_dict(self, strict: bool = False) -> dict:
        return {
            "violations": self.violations,
            "warnings": self.warnings,
            "infos": self.infos,
            "syntax_errors": len(self.problems),
            "errors": len(self.errors),
            "files_with_results": self.files_with_results,
            "files": self.files,
            "triples": self.triples,
            "shapes": self.shapes,
            "checks": self.checks,
            "skipped": self.skipped,
            "strict": strict,
            "exit_code": self.exit_code(strict),
            "text": self.summary(),
        }


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _where(location: Location | None) -> str:
    return f"{location.file}:{location.line}" if location else "(no source line)"


def _term_key(term) -> str | None:
    if term is None:
        return None
    if isinstance(term, ox.BlankNode):
        return "_:"
    return str(term)


# --- terms as users read them -------------------------------------------------------------------

_PN_LOCAL = re.compile(r"^(?:[A-Za-z0-9_](?:[A-Za-z0-9_.\-]*[A-Za-z0-9_\-])?)?$")
_IRI_IN_TEXT = re.compile(r"(?P<bracketed><[^<>\s]*>)|(?P<bare>https?://[^\s<>\"'{}|\\^`]+)")


class Shortener:
    """Terms as short text with the graph's prefixes (``authority:derby-city-council``)."""

    def __init__(self, prefixes: dict[str, str]) -> None:
        pairs = [(p, ns) for p, ns in prefixes.items() if ns]
        # longest namespace first, then the shortest prefix name, for a stable choice
        self._pairs = sorted(pairs, key=lambda pn: (-len(pn[1]), len(pn[0]), pn[0]))

    def iri(self, iri: str) -> str:
        for prefix, ns in self._pairs:
            if iri.startswith(ns) and _PN_LOCAL.match(iri[len(ns):]):
                return f"{prefix}:{iri[len(ns):]}"
        return f"<{iri}>"

    def term(self, term, limit: int = 60) -> str | None:
        if term is None:
            return None
        if isinstance(term, ox.NamedNode):
            return self.iri(term.value)
        if isinstance(term, ox.BlankNode):
            return "[]"
        if isinstance(term, ox.Literal):
            value = term.value
            if len(value) > limit:
                value = value[: limit - 1] + "…"
            text = json.dumps(value, ensure_ascii=False)
            if term.language:
                return f"{text}@{term.language}"
            if term.datatype.value != _XSD + "string":
                return f"{text}^^{self.iri(term.datatype.value)}"
            return text
        return str(term)

    def text(self, message: str) -> str:
        """Bare IRIs inside a message (pySHACL fills ``{?value}`` with them) made short; IRIs
        the author wrote in angle brackets (``<https://www.derby.gov.uk/>``) are left as written."""

        def shorten(match: re.Match) -> str:
            if match.group("bracketed"):
                return match.group(0)
            iri = match.group("bare").rstrip(".,;:)")
            short = self.iri(iri)
            return match.group(0) if short.startswith("<") else short + match.group("bare")[len(iri):]

        return _IRI_IN_TEXT.sub(shorten, message)


# --- finding where a result is written ------------------------------------------------------------

class Locator:
    """``FILE:LINE`` for a result: the triple, else the subject's statement, else the subject, else
    the place that refers to the focus (a dangling reference has no description of its own)."""

    def __init__(self, graph: LoadedGraph) -> None:
        self.graph = graph
        self.store = graph.store
        self._referrers: dict[str, Location] | None = None

    @property
    def index(self) -> SourceIndex:
        """The graph's line index, made on the first result to locate (scanned in worker
        processes only when no other thread runs: the SHACL engine may still be at work)."""
        graph = self.graph
        if not graph.has_index:
            graph.build_index(parallel=threading.active_count() == 1)
        return graph.index

    def _predicates_with(self, focus: ox.NamedNode, value) -> list[str]:
        """The predicates linking ``focus`` to ``value`` (a result without a path, e.g. from SPARQL)."""
        if isinstance(value, ox.Triple) or value is None:
            return []
        try:
            quads = self.store.quads_for_pattern(focus, None, value, ox.DefaultGraph())
            return sorted({q.predicate.value for q in quads})
        except (TypeError, ValueError):
            return []

    def _referrer(self, iri: str) -> Location | None:
        if self._referrers is None:
            refs: dict[str, Location] = {}
            for (_s, _p, o), loc in self.index.objects.items():
                if o not in refs or loc < refs[o]:
                    refs[o] = loc
            self._referrers = refs
        return self._referrers.get(iri)

    def locate(self, focus, path: ox.NamedNode | None, value, inverse: bool = False) -> Location | None:
        f = focus.value if isinstance(focus, ox.NamedNode) else None
        p = path.value if path is not None else None
        v = value.value if isinstance(value, ox.NamedNode) else None
        if f is not None and p is not None and isinstance(value, ox.Literal):
            found = self.index.objects.get((f, p, literal_key(value.value)))
            if found is not None:
                return found
        if inverse and v is not None and f is not None and p is not None:
            found = self.index.locate(v, p, f)
            if found is not None:
                return found
        if f is not None and p is None and value is not None:
            places = [self.index.locate(f, q, v) for q in self._predicates_with(focus, value)]
            places = [loc for loc in places if loc is not None and loc not in self.index.subjects.get(f, [])]
            if places:
                return min(places)
        if f is not None:
            found = self.index.locate(f, None if inverse else p, v)
            if found is not None:
                return found
            found = self._referrer(f)
            if found is not None:
                return found
        if v is not None:
            return self.index.locate(v) or self._referrer(v)
        return None


# --- SHACL -------------------------------------------------------------------------------------------

ShaclEngine = Callable[[rdflib.Graph, rdflib.Graph], rdflib.Graph]


class _PreparedQueryGraph(rdflib.Graph):
    """An rdflib Graph that parses each distinct SPARQL text once.

    pySHACL runs a SHACL-SPARQL constraint once per focus node with the same text and ``$this``
    bound; rdflib would parse it every time (about 0.1 s each: minutes for our few thousand
    triples). Prepared queries are rdflib's documented way to reuse a query with other bindings.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._prepared: dict[tuple, object] = {}
        self._namespaces: dict[str, rdflib.URIRef] | None = None

    def query(self, query_object, processor="sparql", result="sparql", initNs=None, initBindings=None,  # noqa: N803
              use_store_provided=True, **kwargs):
        if isinstance(query_object, str) and processor == "sparql":
            from rdflib.plugins.sparql.processor import prepareQuery

            if initNs is None:
                if self._namespaces is None:
                    self._namespaces = dict(self.namespaces())
                initNs = self._namespaces  # noqa: N806
            base = kwargs.get("base")
            key = (query_object, base, tuple(sorted((k, str(v)) for k, v in initNs.items())))
            prepared = self._prepared.get(key)
            if prepared is None:
                prepared = self._prepared[key] = prepareQuery(query_object, initNs=initNs, base=base)
            query_object = prepared
        return super().query(query_object, processor, result, initNs, initBindings, use_store_provided, **kwargs)


def _pyshacl_engine(data: rdflib.Graph, shapes: rdflib.Graph) -> rdflib.Graph:
    import pyshacl

    data = _PreparedQueryGraph(store=data.store, identifier=data.identifier)
    _conforms, results, _text = pyshacl.validate(
        data, shacl_graph=shapes, inference="none", advanced=True, allow_warnings=True,
        allow_infos=True, inplace=True, abort_on_first=False, meta_shacl=False, js=False,
    )
    return results


def _sparql_targets_as_nodes(store: ox.Store, shapes: rdflib.Graph) -> rdflib.Graph:
    """The shapes with every plain ``sh:SPARQLTarget`` replaced by the ``sh:targetNode``s its query
    selects, the query run once by pyoxigraph over ``store``.

    Same focus nodes, so the same results (a SPARQL target is a query for focus nodes); pyoxigraph
    runs these whole-graph queries several times faster than the SHACL engine does (100k triples:
    validation 5.1 s -> 2.4 s). Targets with parameters, or whose query fails or selects a blank
    node, are left to the engine.
    """
    replaced: list[tuple] = []
    added: list[tuple] = []
    for shape, target in shapes.subject_objects(SH.target):
        query = shapes.value(target, SH.select)
        if query is None or (target, RDF.type, SH.SPARQLTarget) not in shapes:
            continue
        if any(p not in (RDF.type, SH.select, SH.prefixes, rdflib.RDFS.label, rdflib.RDFS.comment)
               for p in shapes.predicates(target, None)):
            continue  # parameters or anything else we do not know: the engine's business
        prefixes = "".join(
            f"PREFIX {shapes.value(decl, SH.prefix)}: <{shapes.value(decl, SH.namespace)}>\n"
            for holder in shapes.objects(target, SH.prefixes) for decl in shapes.objects(holder, SH.declare)
        )
        try:
            solutions = store.query(prefixes + str(query))
            nodes = [row["this"] for row in solutions]
        except (SyntaxError, OSError, ValueError, RuntimeError, KeyError):
            continue
        if any(n is None or isinstance(n, ox.BlankNode) for n in nodes):
            continue
        replaced.append((shape, SH.target, target))
        added.extend((shape, SH.targetNode, ox_to_rdflib(n)) for n in nodes)
    if not replaced:
        return shapes
    out = rdflib.Graph()
    for prefix, namespace in shapes.namespaces():
        out.bind(prefix, namespace, override=True)
    out += shapes
    for triple in replaced:
        out.remove(triple)
    for triple in added:
        out.add(triple)
    return out


def _turbo_engine(data: rdflib.Graph | ox.Store, shapes: rdflib.Graph) -> rdflib.Graph:
    """pyshacl-turbo (pySHACL's API, a native engine). Fastest fed the pyoxigraph Store itself
    (``accepts_store``): no rdflib copy of the data is made; the results come back as rdflib.
    With a Store, SPARQL targets are run by pyoxigraph first (``_sparql_targets_as_nodes``)."""
    import pyshacl_turbo

    if isinstance(data, ox.Store):
        shapes = _sparql_targets_as_nodes(data, shapes)
    _conforms, results, _text = pyshacl_turbo.validate(
        data, shacl_graph=shapes, inference="none", advanced=True, allow_warnings=True, allow_infos=True,
    )
    return results


_turbo_engine.accepts_store = True  # type: ignore[attr-defined]

ENGINES: dict[str, ShaclEngine] = {"pyshacl": _pyshacl_engine, "pyshacl-turbo": _turbo_engine}
# pySHACL stays the reference (tests/test_equivalence.py checks the two agree); EMKG_SHACL_ENGINE
# picks another engine for a run (e.g. EMKG_SHACL_ENGINE=pyshacl emkg validate).
DEFAULT_ENGINE = "pyshacl-turbo"
ENGINE_ENV = "EMKG_SHACL_ENGINE"


def default_engine() -> str:
    """The engine ``validate``/``build`` use: ``$EMKG_SHACL_ENGINE``, else ``DEFAULT_ENGINE`` (if installed)."""
    chosen = os.environ.get(ENGINE_ENV, "").strip()
    if chosen:
        if chosen not in ENGINES:
            raise UsageError(f"{ENGINE_ENV}={chosen!r}: unknown SHACL engine; use one of {', '.join(ENGINES)}")
        return chosen
    if DEFAULT_ENGINE == "pyshacl-turbo":
        import importlib.util

        if importlib.util.find_spec("pyshacl_turbo") is None:
            return "pyshacl"
    return DEFAULT_ENGINE


@dataclass(frozen=True)
class ShaclResult:
    """A result as the engine reports it (rdflib terms), before wording and locating."""

    focus: rdflib.term.Node | None
    path: rdflib.term.Node | None
    value: rdflib.term.Node | None
    severity: str
    messages: tuple[str, ...]
    shape: rdflib.term.Node | None
    component: rdflib.term.Node | None
    constraint: rdflib.term.Node | None


def run_shacl(data: rdflib.Graph | ox.Store, shapes: rdflib.Graph, engine: str | ShaclEngine | None = None) -> tuple[list[ShaclResult], rdflib.Graph]:
    """Validate ``data`` against ``shapes`` with one engine: the results and the results graph.

    The one place an engine is called, so that a faster one can be swapped in (``ENGINES``).
    ``data`` is an rdflib Graph, or a pyoxigraph Store for engines that say ``accepts_store``.
    ``engine`` None is :func:`default_engine`.
    """
    engine = default_engine() if engine is None else engine
    run = ENGINES[engine] if isinstance(engine, str) else engine
    results_graph = run(data, shapes)
    return read_results(results_graph), results_graph


def read_results(results_graph: rdflib.Graph) -> list[ShaclResult]:
    out = []
    g = results_graph
    for r in set(g.subjects(RDF.type, SH.ValidationResult)) | set(g.objects(None, SH.result)):
        messages = sorted(g.objects(r, SH.resultMessage), key=lambda m: (getattr(m, "language", None) not in (None, "en"), str(m)))
        out.append(ShaclResult(
            focus=g.value(r, SH.focusNode),
            path=g.value(r, SH.resultPath),
            value=g.value(r, SH.value),
            severity=_SEVERITY_OF.get(g.value(r, SH.resultSeverity), "violation"),
            messages=tuple(str(m) for m in messages),
            shape=g.value(r, SH.sourceShape),
            component=g.value(r, SH.sourceConstraintComponent),
            constraint=g.value(r, SH.sourceConstraint),
        ))
    return out


def _path_text(node, graphs: Sequence[rdflib.Graph], short: Shortener, depth: int = 0) -> str:
    """A SHACL path node as SPARQL property-path text."""
    if isinstance(node, rdflib.URIRef):
        return short.iri(str(node))
    if depth > 8 or node is None:
        return "?"
    for g in graphs:
        if (node, None, None) not in g:
            continue
        if (node, RDF.first, None) in g:
            items = list(rdflib.collection.Collection(g, node))
            return "/".join(_path_group(i, graphs, short, depth) for i in items)
        for pred, fmt in ((SH.inversePath, "^{}"), (SH.zeroOrMorePath, "{}*"), (SH.oneOrMorePath, "{}+"), (SH.zeroOrOnePath, "{}?")):
            inner = g.value(node, pred)
            if inner is not None:
                return fmt.format(_path_group(inner, graphs, short, depth))
        alt = g.value(node, SH.alternativePath)
        if alt is not None:
            return "|".join(_path_group(i, graphs, short, depth) for i in rdflib.collection.Collection(g, alt))
    return "?"


def _path_group(node, graphs, short, depth) -> str:
    text = _path_text(node, graphs, short, depth + 1)
    return text if isinstance(node, rdflib.URIRef) else f"({text})"


def _simple_path(node, graphs: Sequence[rdflib.Graph]) -> tuple[rdflib.URIRef | None, bool]:
    """The predicate of ``p`` or ``^p`` paths (and whether it is inverse); None otherwise."""
    if isinstance(node, rdflib.URIRef):
        return node, False
    for g in graphs:
        inner = g.value(node, SH.inversePath) if node is not None else None
        if isinstance(inner, rdflib.URIRef):
            return inner, True
    return None, False


def _shape_name(shape, graphs: Sequence[rdflib.Graph], short: Shortener) -> str:
    if isinstance(shape, rdflib.URIRef):
        return short.iri(str(shape))
    if shape is None:
        return "(unknown shape)"
    for g in graphs:
        parent = next(iter(g.subjects(SH.property, shape)), None)
        if parent is not None:
            path = g.value(shape, SH.path)
            via = _path_text(path, graphs, short) if path is not None else "?"
            return f"{_shape_name(parent, graphs, short)} property {via}"
    for g in graphs:
        path = g.value(shape, SH.path)
        if path is not None:
            return f"property shape {_path_text(path, graphs, short)}"
    return "(anonymous shape)"


_NODE_KIND = {
    "IRI": "an IRI", "Literal": "a literal", "BlankNode": "a blank node",
    "BlankNodeOrIRI": "an IRI or a blank node", "IRIOrLiteral": "an IRI or a literal",
    "BlankNodeOrLiteral": "a blank node or a literal",
}


def _default_message(r: ShaclResult, component: str, subject: str, graphs, short: Shortener) -> str | None:
    """Our wording for the core components when the shape has no ``sh:message``."""

    def param(pred):
        for g in graphs:
            if r.shape is not None:
                v = g.value(r.shape, pred)
                if v is not None:
                    return v
        return None

    def text(term) -> str:
        if term is None:
            return "?"
        return short.term(rdflib_to_ox(term)) or "?"

    if component == "MinCount":
        n = int(param(SH.minCount) or 1)
        return f"missing required {subject}" if n == 1 else f"needs at least {n} values of {subject}"
    if component == "MaxCount":
        n = int(param(SH.maxCount) or 0)
        if n == 0:
            return f"{subject} is not allowed here"
        return f"more than one value of {subject}" if n == 1 else f"more than {n} values of {subject}"
    if component == "Datatype":
        return f"{subject} must be a literal of datatype {text(param(SH.datatype))}"
    if component == "NodeKind":
        kind = param(SH.nodeKind)
        name = str(kind).rsplit("#", 1)[-1] if kind is not None else "?"
        return f"{subject} must be {_NODE_KIND.get(name, name)}"
    if component == "Class":
        return f"{subject} must be an instance of {text(param(SH.class_))}"
    if component == "Pattern":
        pattern = param(SH.pattern)
        return f"{subject} does not match the pattern {json.dumps(str(pattern)) if pattern is not None else '?'}"
    if component in ("MinLength", "MaxLength"):
        n = param(SH.minLength if component == "MinLength" else SH.maxLength)
        return f"{subject} is {'shorter' if component == 'MinLength' else 'longer'} than {n} characters"
    if component in ("MinInclusive", "MinExclusive", "MaxInclusive", "MaxExclusive"):
        op = {"MinInclusive": ">=", "MinExclusive": ">", "MaxInclusive": "<=", "MaxExclusive": "<"}[component]
        pred = {"MinInclusive": SH.minInclusive, "MinExclusive": SH.minExclusive,
                "MaxInclusive": SH.maxInclusive, "MaxExclusive": SH.maxExclusive}[component]
        return f"{subject} must be {op} {text(param(pred))}"
    if component == "In":
        allowed = param(SH["in"])
        items: list[str] = []
        for g in graphs:
            if allowed is not None and (allowed, RDF.first, None) in g:
                items = [text(i) for i in rdflib.collection.Collection(g, allowed)]
                break
        shown = ", ".join(items[:8]) + (", …" if len(items) > 8 else "")
        return f"{subject} must be one of: {shown}" if items else f"{subject} is not one of the allowed values"
    if component == "HasValue":
        return f"{subject} must include {text(param(SH.hasValue))}"
    if component == "LanguageIn":
        return f"{subject} has a language tag that is not allowed"
    if component == "UniqueLang":
        return f"{subject} has more than one value in the same language"
    if component in ("Equals", "Disjoint", "LessThan", "LessThanOrEquals"):
        other = {"Equals": SH.equals, "Disjoint": SH.disjoint, "LessThan": SH.lessThan, "LessThanOrEquals": SH.lessThanOrEquals}[component]
        verb = {"Equals": "must equal", "Disjoint": "must not share values with", "LessThan": "must be less than",
                "LessThanOrEquals": "must be less than or equal to"}[component]
        return f"{subject} {verb} {text(param(other))}"
    if component == "Closed":
        return f"{subject} is not allowed by the closed shape"
    if component == "Node":
        return f"{subject} does not conform to {text(param(SH.node))}"
    return None


def _shacl_to_results(raw: list[ShaclResult], results_graph: rdflib.Graph, shapes_graph: rdflib.Graph,
                      locator: Locator, short: Shortener) -> list[Result]:
    graphs = (shapes_graph, results_graph)
    out = []
    for r in raw:
        component = str(r.component or "")
        component = component[len(_SH):] if component.startswith(_SH) else component
        component = component.removesuffix("ConstraintComponent") or "?"
        predicate, inverse = _simple_path(r.path, graphs)
        path_text = _path_text(r.path, graphs, short) if r.path is not None else None
        focus = _to_ox(r.focus)
        value = _to_ox(r.value)
        has_message = any(
            node is not None and any((node, SH.message, None) in g for g in graphs)
            for node in (r.shape, r.constraint)
        )
        message = None
        if not has_message:
            subject = path_text if path_text is not None else "the node"
            message = _default_message(r, component, subject, graphs, short)
        if message is None:
            message = short.text(_pick_message(r, graphs)) if r.messages else f"fails the {component} constraint"
        message = " ".join(message.split())
        location = locator.locate(focus, rdflib_to_ox(predicate) if predicate is not None else None, value, inverse)
        out.append(Result(
            severity=r.severity, message=message, focus=focus,
            path=rdflib_to_ox(predicate) if predicate is not None else None, value=value,
            source=short.iri(str(r.constraint)) if isinstance(r.constraint, rdflib.URIRef) else _shape_name(r.shape, graphs, short),
            component=component, location=location,
            path_text=path_text, focus_text=short.term(focus), value_text=short.term(value),
        ))
    return out


def _pick_message(r: ShaclResult, graphs: Sequence[rdflib.Graph]) -> str:
    """pySHACL gives a SHACL-SPARQL result both the shape's and the constraint's messages; the
    constraint's is the specific one (it names the values), so it wins."""
    if r.constraint is not None and len(r.messages) > 1:
        shape_messages = {str(m) for g in graphs for m in g.objects(r.shape, SH.message)} if r.shape is not None else set()
        specific = [m for m in r.messages if m not in shape_messages]
        if specific:
            return specific[0]
    return r.messages[0]


def merge_duplicates(results: Iterable[Result]) -> list[Result]:
    """One result per line of output: constraints of one shape that say the same thing about the same
    value (sh:nodeKind and sh:pattern with one sh:message) are merged, their components joined."""
    merged: dict[tuple, Result] = {}
    for r in results:
        key = (r.location, r.severity, r.message, r.focus_text, r.path_text, r.value_text)
        first = merged.get(key)
        if first is None:
            merged[key] = r
            continue
        components = sorted(set(first.component.split(", ")) | set(r.component.split(", ")))
        sources = sorted(set(first.source.split(", ")) | set(r.source.split(", ")))
        merged[key] = replace(first, component=", ".join(components), source=", ".join(sources))
    return sorted(merged.values(), key=Result.sort_key)


def _to_ox(term):
    if term is None:
        return None
    try:
        return rdflib_to_ox(term)
    except TypeError:
        return None


def count_shapes(shapes: LoadedGraph) -> int:
    query = """
        PREFIX sh: <http://www.w3.org/ns/shacl#>
        SELECT (COUNT(DISTINCT ?s) AS ?n) WHERE {
          { ?s a sh:NodeShape } UNION { ?s a sh:PropertyShape } UNION { ?x sh:property ?s }
          UNION { ?s sh:targetClass|sh:targetNode|sh:targetSubjectsOf|sh:targetObjectsOf|sh:target ?t }
        }"""
    for row in shapes.store.query(query):
        return int(row["n"].value)
    return 0


# --- QC queries ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class QcCheck:
    """A query in ``queries/qc/``: its header and text."""

    path: Path
    name: str  # as users see it: queries/qc/x.rq
    title: str
    description: str
    severity: str
    text: str


_HEADER = re.compile(r"^#\s*([A-Za-z][\w-]*)\s*:\s*(.*?)\s*$")
_QUERY_POSITION = re.compile(r"^(?:error )?at (\d+):(\d+):\s*")


def read_header(text: str) -> dict[str, tuple[str, int]]:
    """The ``# key: value`` comment lines at the top of a query, with their line numbers."""
    header: dict[str, tuple[str, int]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if not line.startswith("#"):
            break
        match = _HEADER.match(line)
        if match:
            header.setdefault(match.group(1).lower(), (match.group(2), number))
    return header


def qc_checks(project: Project) -> tuple[list[QcCheck], list[ProjectProblem]]:
    """Read ``queries/qc/*.rq``; headers that cannot be used are project problems."""
    checks, problems = [], []
    folder = project.qc_dir
    if not folder.is_dir():
        return checks, problems
    for path in sorted(folder.glob("*.rq")):
        name = project.relative(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(ProjectProblem(Location(name, 1), f"cannot read the QC query: {exc}"))
            continue
        header = read_header(text)
        severity, severity_line = header.get("severity", ("violation", 1))
        if severity.lower() not in SEVERITIES:
            problems.append(ProjectProblem(Location(name, severity_line), f"'# severity: {severity}' must be violation or warning"))
            continue
        severity = severity.lower()
        title = header.get("title", ("", 0))[0] or path.stem.replace("-", " ")
        checks.append(QcCheck(path=path, name=name, title=title, description=header.get("description", ("", 0))[0],
                              severity=severity, text=project.rebase_query(text)))
    return checks, problems


def _clamp_position(text: str, line: int, col: int) -> tuple[int, int]:
    """The parser reports where it gave up, which can be past the trailing newline at the end of
    the text; point at the last character written instead."""
    lines = text.split("\n")
    offset = sum(len(l) + 1 for l in lines[: line - 1]) + col - 1
    if text[offset:].strip() or not text.strip():
        return line, col
    last = len(text.rstrip()) - 1
    line = text.count("\n", 0, last) + 1
    return line, last - (text.rfind("\n", 0, last) + 1) + 1


def sparql_error_position(text: str, message: str) -> tuple[int, int, str]:
    """Where a query's syntax error is, and what it is.

    pyoxigraph says 'error at L:C: expected one of ...' at the furthest point it read (often the
    end of the query); rdflib's parser, asked as a second opinion, names the construct that starts
    the failure, and its algebra names undefined prefixes.
    """
    first = message.strip().splitlines()[0] if message.strip() else "syntax error"
    match = _QUERY_POSITION.match(first)
    line, col = (int(match.group(1)), int(match.group(2))) if match else (1, 1)
    detail = first[match.end():] if match else first
    if len(detail) > 160:
        detail = detail[: detail.rfind(",", 0, 150)] + ", ..."
    try:
        from pyparsing import ParseException
        from rdflib.plugins.sparql.algebra import translateQuery
        from rdflib.plugins.sparql.parser import parseQuery
    except ImportError:  # pragma: no cover - rdflib is a dependency
        return (*_clamp_position(text, line, col), detail)
    try:
        parsed = parseQuery(text)
    except ParseException as exc:
        found = re.search(r"found '([^']*)'", str(exc))
        if (exc.lineno, exc.col) < (line, col):
            return exc.lineno, exc.col, f"unexpected {found.group(1)!r}" if found else detail
        return (*_clamp_position(text, line, col), detail)
    except Exception:  # noqa: BLE001 - only a second opinion
        return (*_clamp_position(text, line, col), detail)
    try:
        translateQuery(parsed)
    except Exception as exc:  # noqa: BLE001 - rdflib raises a bare Exception for unknown prefixes
        prefix = re.search(r"Unknown namespace prefix : (\S*)", str(exc))
        if prefix:
            where = _find_token(text, prefix.group(1) + ":")
            if where is not None:
                return where[0], where[1], f"undefined prefix '{prefix.group(1)}:'; declare it with PREFIX"
    return (*_clamp_position(text, line, col), detail)


def _find_token(text: str, token: str) -> tuple[int, int] | None:
    """The first place ``token`` starts a word outside comments (1-based line, column)."""
    pattern = re.compile(rf"(?<![\w:-]){re.escape(token)}")
    for number, line in enumerate(text.splitlines(), 1):
        code = line.split("#", 1)[0] if not line.lstrip().startswith("#") else ""
        hit = pattern.search(code)
        if hit:
            return number, hit.start() + 1
    return None


def run_qc(check: QcCheck, graph: LoadedGraph, locator: Locator, short: Shortener) -> tuple[list[Result], ProjectProblem | None]:
    """Run one QC query: every row is a problem about ``?entity ?property ?value``."""
    try:
        solutions = graph.store.query(check.text)
    except SyntaxError as exc:
        line, col, detail = sparql_error_position(check.text, str(exc.msg if getattr(exc, "msg", None) else exc))
        return [], ProjectProblem(Location(check.name, line, col), f"SPARQL syntax error (column {col}): {detail}")
    except (OSError, ValueError, RuntimeError) as exc:
        return [], ProjectProblem(Location(check.name, 1), f"the QC query failed: {exc}")
    if not isinstance(solutions, ox.QuerySolutions):
        return [], ProjectProblem(Location(check.name, 1), "a QC query must be a SELECT returning ?entity ?property ?value")
    variables = [v.value for v in solutions.variables]
    if "entity" not in variables:
        return [], ProjectProblem(Location(check.name, 1), f"a QC query must select ?entity (it selects {', '.join('?' + v for v in variables) or 'nothing'})")
    results = []
    try:
        for row in solutions:
            focus = row["entity"]
            prop = row["property"] if "property" in variables else None
            value = row["value"] if "value" in variables else None
            custom = row["message"] if "message" in variables else None
            path = prop if isinstance(prop, ox.NamedNode) else None
            message = short.text(custom.value) if isinstance(custom, ox.Literal) else check.title
            results.append(Result(
                severity=check.severity, message=" ".join(message.split()), focus=focus, path=path, value=value,
                source=check.name, component="qc", location=locator.locate(focus, path, value),
                path_text=short.term(prop), focus_text=short.term(focus), value_text=short.term(value),
                help=check.description or None,
            ))
    except (OSError, ValueError, RuntimeError) as exc:
        return results, ProjectProblem(Location(check.name, 1), f"the QC query failed: {exc}")
    return results, None


class _Nowhere:
    """A locator that finds nothing (QC rows are located after the SHACL engine's thread ends:
    the line index may then be made in worker processes)."""

    def locate(self, *_args, **_kwargs) -> None:
        return None


_NOWHERE = _Nowhere()


# --- the public API ----------------------------------------------------------------------------------

def validate_loaded(project: Project, graph: LoadedGraph, shapes: LoadedGraph, qc: bool = True,
                    engine: str | ShaclEngine | None = None, *, reuse: bool = False) -> Report:
    """Validate an already loaded graph: syntax problems, SHACL results and QC rows in one report.

    ``engine``: a name in ``ENGINES`` or a callable; None is :func:`default_engine`.
    ``reuse``: use the work cache (``.cache/validate/``). When the sources, shapes, QC queries,
    engine and emkg itself are byte for byte those of the last validation in this project, its
    report is returned (``emkg validate`` then ``emkg build`` validates once). Otherwise the
    validation is incremental (``revalidation``): only the shape groups and QC queries that read
    a predicate of a changed triple run again.
    """
    engine = default_engine() if engine is None else engine
    if isinstance(engine, str) and engine not in ENGINES:
        raise UsageError(f"unknown SHACL engine {engine!r}; use one of {', '.join(ENGINES)}")
    started = time.perf_counter()
    key = _report_key(project, graph, shapes, qc, engine) if reuse else None
    kept = _kept_report(project, key, started)
    if kept is not None:
        return kept
    report = _validate(project, graph, shapes, qc, engine, started, incremental=reuse and isinstance(engine, str))
    if key is not None:
        write_entry(_report_entry(project), key, report)
    return report


def kept_report(project: Project, graph: LoadedGraph, shapes: LoadedGraph, qc: bool = True,
                engine: str | ShaclEngine | None = None) -> Report | None:
    """The last validation's report when the sources, shapes, QC queries, engine and emkg itself are
    those it was made from (what ``validate_loaded(..., reuse=True)`` returns at once); else None."""
    engine = default_engine() if engine is None else engine
    if isinstance(engine, str) and engine not in ENGINES:
        return None
    started = time.perf_counter()
    return _kept_report(project, _report_key(project, graph, shapes, qc, engine), started)


def _kept_report(project: Project, key: str | None, started: float) -> Report | None:
    if key is None:
        return None
    kept = read_entry(_report_entry(project), key)
    if not isinstance(kept, Report):
        return None
    log.info("validation: the sources are those last validated; the report is reused")
    kept.seconds = time.perf_counter() - started
    return kept


def _report_entry(project: Project) -> Path:
    return cache_root(project) / "validate" / "report.pickle"


def _report_key(project: Project, graph: LoadedGraph, shapes: LoadedGraph, qc: bool, engine) -> str | None:
    """What a validation report is a function of, hashed; None when it cannot be told (an engine
    given as a callable, or a file that could not be read)."""
    if not isinstance(engine, str):
        return None
    digest = hashlib.sha256(code_fingerprint("validate", "load", "terms", "cache", "project").encode("utf-8"))
    digest.update(f"\0{engine}\0{qc}\0{project.base_iri}\0".encode("utf-8"))
    for loaded in (graph, shapes):
        for parsed in loaded.files:
            if parsed.problem is None and not parsed.digest:
                return None
            digest.update(f"{parsed.name}\0{parsed.digest}\0{parsed.problem}\0".encode("utf-8"))
        digest.update(b"\1")
    if qc and not hash_files(digest, project.qc_dir.glob("*.rq") if project.qc_dir.is_dir() else []):
        return None
    return digest.hexdigest()


# Below this a graph validates whole in about a second: keeping results for incremental validation
# (and analysing which predicates each shape reads, a few seconds the first time) does not pay.
INCREMENTAL_TRIPLES = 50_000
# Turtle takes 55-60 bytes a triple in this project's data and the generated trees: sources of
# at least this many bytes are likely to be a graph validated incrementally
INCREMENTAL_BYTES = INCREMENTAL_TRIPLES * 40


def _prefetch_analysis(project: Project, shapes: LoadedGraph, files: Sequence[Path], qc: bool) -> Prefetch | None:
    """For a graph likely to be validated incrementally (judged by its files' size, before they are
    read): what the QC queries and the shapes' SPARQL read (``querydeps``), worked out in a child
    process while this one loads the graph, on one core."""
    try:
        size = sum(path.stat().st_size for path in files)
    except OSError:
        return None  # loading reports it
    if size < INCREMENTAL_BYTES or shapes.problems:
        return None
    texts = shapedeps.sparql_texts(shapes.to_rdflib()) if len(shapes) else []
    if qc:
        texts += [check.text for check in qc_checks(project)[0]]
    return Prefetch(texts, project)


@dataclass
class _ShaclRun:
    """One run of the SHACL engine: all shapes on the whole graph (``groups`` None), or (after an
    edit) the shape groups to run again on the triples they read."""

    data: object
    shapes: rdflib.Graph
    groups: list | None = None


def _group_run(graph: LoadedGraph, shapes_graph: rdflib.Graph, groups: list, takes_store: bool) -> _ShaclRun:
    from . import revalidation

    if any(g.reads is None for g in groups):
        sub = graph.store
    else:
        sub = revalidation.subgraph(graph.store, set().union(*(g.reads for g in groups)))
    if not takes_store:
        from .terms import store_to_rdflib

        sub = store_to_rdflib(sub, graph.prefixes)
    return _ShaclRun(sub, shapedeps.reduced_shapes(shapes_graph, [r for g in groups for r in g.roots]), groups)


# From this size on, a whole validation runs the shapes in two processes (half the shape groups
# each) where it can: each pays the engine's fixed cost (reading the graph: about 8 s at 1M
# triples) but the rest is halved, on two cores. Below it the fixed cost is most of the work.
SPLIT_TRIPLES = 300_000


def _splits(graph: LoadedGraph, run) -> bool:
    """Whether a whole validation of ``graph`` runs in two processes (``SPLIT_TRIPLES``, an engine
    that takes the store, ``fork`` and two CPUs)."""
    return (len(graph) >= SPLIT_TRIPLES and getattr(run, "accepts_store", False) and hasattr(os, "fork")
            and (os.cpu_count() or 1) >= 2)


def _halves(plan, shapes: rdflib.Graph, store: ox.Store, triples: int) -> tuple[list, list] | None:
    """The targeted shapes split in two (whole shape groups: a group's shapes report through a
    shared shape), of about equal work: each group weighs its target nodes (counted in
    ``store``, of ``triples``) times its constraints, and goes to the lighter half, heaviest first. None: no
    plan, or fewer than two groups."""
    if plan is None or len(plan.groups) < 2:
        return None
    rdf_type = ox.NamedNode(str(RDF.type))

    def count(s, p, o) -> int:
        return sum(1 for _ in store.quads_for_pattern(s, p, o, ox.DefaultGraph()))

    def weight(group) -> int:
        total = 0
        for root in group.roots:
            nodes = sum(count(None, rdf_type, ox.NamedNode(str(c))) for c in shapes.objects(root, SH.targetClass))
            nodes += sum(count(None, ox.NamedNode(str(p)), None)
                         for key in (SH.targetSubjectsOf, SH.targetObjectsOf) for p in shapes.objects(root, key))
            nodes += sum(1 for _ in shapes.objects(root, SH.targetNode))
            nodes += triples // 100 if (root, SH.target, None) in shapes else 0  # a SPARQL target: unknown
            total += nodes * (1 + sum(1 for p in (SH.property, SH.sparql) for _ in shapes.objects(root, p)))
        return total

    halves: tuple[list, list] = ([], [])
    loads = [0, 0]
    for w, key in sorted(((weight(g), g.key) for g in plan.groups.values()), key=lambda x: (-x[0], x[1])):
        lighter = 0 if loads[0] <= loads[1] else 1
        halves[lighter].extend(plan.groups[key].roots)
        loads[lighter] += w
    return halves if all(halves) else None


def _plan_run(graph: LoadedGraph, shapes_graph: rdflib.Graph, run, plan, previous, changed: set[str] | None) -> _ShaclRun | None:
    """The engine's run: every shape on the whole graph, or (after an edit) the groups that read a
    changed predicate; None when no group needs to run again."""
    takes_store = getattr(run, "accepts_store", False)
    again = None
    if plan is not None and previous is not None and changed is not None:
        again = [g for g in plan.groups.values()
                 if g.reads is None or g.key not in previous.groups or previous.groups[g.key].blank or g.reads & changed]
    if again is None or len(again) == len(plan.groups):
        return _ShaclRun(graph.store if takes_store else graph.to_rdflib(), shapes_graph)
    if not again:
        return None
    one = _group_run(graph, shapes_graph, again, takes_store)
    log.info("validation: %d of %d shape groups run again, on %d of %d triples (the predicates they read)",
             len(again), len(plan.groups), len(one.data), len(graph.store))
    return one


def _validate(project: Project, graph: LoadedGraph, shapes: LoadedGraph, qc: bool, engine, started: float,
              incremental: bool = False) -> Report:
    """The validation itself (``validate_loaded`` without the report cache)."""
    from . import revalidation

    report = Report(triples=len(graph), files=len(graph.files))
    report.problems = sorted(graph.problems + shapes.problems, key=lambda p: (p.location, p.message))
    if report.problems:
        report.skipped = "syntax errors: the graph is incomplete, SHACL and QC checks were not run"
        report.seconds = time.perf_counter() - started
        return report

    prefixes = dict(shapes.prefixes)
    prefixes.update(graph.prefixes)
    short = Shortener(prefixes)
    locator = Locator(graph)

    incremental = incremental and len(graph) >= INCREMENTAL_TRIPLES
    state_key = revalidation.static_key(project, shapes, qc, engine, prefixes) if incremental else None
    previous = revalidation.read_state(project, state_key)
    changed = revalidation.changed_predicates(project, previous, graph)
    state = revalidation.State(files={f.name: f.digest for f in graph.files}) if state_key is not None else None

    report.shapes = count_shapes(shapes) if len(shapes) else 0
    # The SHACL engine runs in a thread while the QC queries run here: both spend their time in
    # native code (pyshacl-turbo, pyoxigraph) without the GIL, so on two cores they overlap.
    # The results are put together in the same order as if run one after the other.
    engine_thread = None
    outcome: dict = {}
    shapes_graph = shapes.to_rdflib() if len(shapes) else None
    shacl: _ShaclRun | None = None
    plan = None
    if shapes_graph is not None:
        run = ENGINES[engine] if isinstance(engine, str) else engine
        if state_key is not None and previous is not None and changed is not None:
            plan = _shape_plan(shapes_graph, project, shapes)
        shacl = _plan_run(graph, shapes_graph, run, plan, previous, changed)
        halves = None
        if shacl is not None and shacl.groups is None and _splits(graph, run):
            plan = plan if plan is not None else _shape_plan(shapes_graph, project, shapes)
            halves = _halves(plan, shapes_graph, graph.store, len(graph))
        if halves is not None:  # one half in a forked child, the other in the thread below
            first = shapedeps.reduced_shapes(shapes_graph, halves[0])
            shacl = _ShaclRun(graph.store, shapedeps.reduced_shapes(shapes_graph, halves[1]))
            other = Forked(lambda: run_shacl(graph.store, first, run))  # forked last: the thread below waits for it
            log.info("validation: the shapes run in two processes, %d and %d targeted shapes", *map(len, halves))

        def run_engine() -> None:
            began = time.perf_counter()
            try:
                try:
                    outcome["parts"] = [run_shacl(shacl.data, shacl.shapes, run)]
                finally:
                    if halves is not None:  # waited for whatever happened here
                        outcome.setdefault("parts", []).insert(0, other.result())
                log.debug("SHACL engine: %.2fs", time.perf_counter() - began)
            except Exception as exc:  # the engine refuses the shapes (bad SPARQL in sh:select, ...)  # noqa: BLE001
                log.debug("SHACL engine failed", exc_info=True)
                outcome["error"] = exc

        if shacl is not None and getattr(run, "accepts_store", False):
            engine_thread = threading.Thread(target=run_engine, name="emkg-shacl", daemon=True)
            engine_thread.start()
        elif shacl is not None:  # rdflib-based engines hold the GIL: nothing to gain
            run_engine()

    qc_rows: list[tuple[Result, bool]] = []
    qc_errors: list[ProjectProblem] = []
    if qc:
        checks, problems = qc_checks(project)
        qc_errors.extend(problems)
        for check in checks:
            rows, problem = _run_or_keep_qc(check, graph, short, project, previous, changed, state)
            qc_rows.extend(rows)
            report.checks += 1
            if problem is not None:
                qc_errors.append(problem)
    if state_key is not None and plan is None and shapes_graph is not None:
        plan = _shape_plan(shapes_graph, project, shapes)  # analysed while the engine runs, for the next time

    if engine_thread is not None:
        engine_thread.join()
    results: list[Result] = []
    if "error" in outcome:
        exc = outcome["error"]
        folder = project.relative(project.shapes_dir) + "/"
        report.errors.append(ProjectProblem(None, f"the SHACL shapes could not be run: {type(exc).__name__}: {' '.join(str(exc).split())}", file=folder))
        state = None
    elif shapes_graph is not None:
        raw, pairs = [], []
        for part, results_graph in outcome.get("parts", []):  # one run, or two halves
            made = _shacl_to_results(part, results_graph, shapes_graph, _NOWHERE, short)
            graphs = (shapes_graph, results_graph)
            pairs.extend((r, _simple_path(x.path, graphs)[1]) for r, x in zip(made, part))
            raw.extend(part)
        ran = [] if shacl is None else shacl.groups  # the groups that ran (None: all, in a whole run)
        groups = _by_group(plan, raw, pairs, ran)
        if groups is None and ran is not None:
            log.info("validation: a result is not placed in a shape group; validating in full")
            return _validate(project, graph, shapes, qc, engine, started, incremental=False)
        kept_pairs: list[tuple] = []
        if ran is not None:  # incremental: the other groups' results are last time's
            kept_pairs = [pair for key in plan.groups if key not in groups for pair in previous.groups[key].results]
        if state is not None and groups is not None:
            state.groups = {key: revalidation.kept(groups[key]) if key in groups else previous.groups[key]
                            for key in plan.groups}
        results.extend(replace(r, location=locator.locate(r.focus, r.path, r.value, inverse))
                       for r, inverse in [*pairs, *kept_pairs])
    results.extend(replace(r, location=locator.locate(r.focus, r.path, r.value)) for r, _ in qc_rows)
    report.errors.extend(qc_errors)
    if state is not None:
        revalidation.save_state(project, state_key, state, graph)

    report.results = merge_duplicates(results)
    report.errors.sort(key=lambda e: (e.location is None, e.location or Location("", 0), e.message))
    report.seconds = time.perf_counter() - started
    return report


def _shape_plan(shapes_graph: rdflib.Graph, project: Project, shapes: LoadedGraph):
    """The shape groups and what each reads (``shapedeps``); kept in the work cache for the same
    shapes files when every shape a result can name has an IRI."""
    from .shapedeps import plan_shapes

    digest = hashlib.sha256(code_fingerprint("shapedeps", "querydeps").encode("utf-8"))
    for parsed in shapes.files:
        digest.update(f"\0{parsed.name}\0{parsed.digest}\0{parsed.problem}".encode("utf-8"))
    key, entry = digest.hexdigest(), cache_root(project) / "validate" / "shape-plan.pickle"
    plan = read_entry(entry, key)
    if plan is None:
        plan = plan_shapes(shapes_graph, project)
        if plan is not None and all(isinstance(s, rdflib.URIRef) for s in plan.by_shape):
            write_entry(entry, key, plan)
    return plan


def _by_group(plan, raw: list[ShaclResult], pairs: list[tuple], ran: list | None) -> dict[str, list] | None:
    """The engine's results by shape group; None when one cannot be placed (or, in an
    incremental run, belongs to a group that was not run)."""
    if plan is None:
        return None
    allowed = None if ran is None else {g.key for g in ran}
    out: dict[str, list] = {g.key: [] for g in (ran if ran is not None else plan.groups.values())}
    for r, pair in zip(raw, pairs):
        key = plan.group_of(r.shape)
        if key is None or (allowed is not None and key not in allowed):
            return None
        out[key].append(pair)
    return out


def _run_or_keep_qc(check: QcCheck, graph: LoadedGraph, short: Shortener, project: Project, previous,
                    changed: set[str] | None, state) -> tuple[list[tuple[Result, bool]], ProjectProblem | None]:
    """A QC check's rows (located later): last time's when it reads no changed predicate."""
    from . import revalidation
    from .querydeps import query_predicates

    key = f"{check.name}\0{hashlib.sha256(check.text.encode('utf-8')).hexdigest()}"
    last = previous.checks.get(key) if previous is not None else None
    if last is not None and changed is not None and not last.blank:
        reads = query_predicates(check.text, project)
        if reads is not None and not reads & changed:
            if state is not None:
                state.checks[key] = last
            return list(last.results), last.problem
    rows, problem = run_qc(check, graph, _NOWHERE, short)  # located once the engine is done
    pairs = [(r, False) for r in rows]
    if state is not None:
        query_predicates(check.text, project)  # analysed now, for the next run
        state.checks[key] = revalidation.kept(pairs, problem)
    return pairs, problem


def render_report(report: Report, fmt: str = "text", strict: bool = False) -> str:
    """The report as ``text`` (FILE:LINE lines and a summary), ``json`` or ``github`` commands."""
    if fmt == "json":
        return _render_json(report, strict)
    if fmt == "github":
        return _render_github(report)
    if fmt != "text":
        raise UsageError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    lines = [str(p) for p in report.problems]
    lines += [str(e) for e in report.errors]
    lines += [str(r) for r in report.results]
    lines.append(report.summary())
    return "\n".join(lines)


def _json_term(term) -> str | None:
    if term is None:
        return None
    if isinstance(term, ox.NamedNode):
        return term.value
    return str(term)


def _json_path(r: Result) -> str | None:
    """The full IRI of a simple path; SPARQL path text (with prefixes) for inverse and complex paths."""
    if r.path is not None and not (r.path_text or "").startswith("^"):
        return r.path.value
    return r.path_text


def _render_json(report: Report, strict: bool) -> str:
    items = []
    for p in report.problems:
        items.append({"file": p.location.file, "line": p.location.line, "column": p.location.col, "severity": "error",
                      "message": p.message, "focus": None, "path": None, "value": None, "source": "syntax", "component": "syntax"})
    for e in report.errors:
        loc = e.location
        items.append({"file": loc.file if loc else e.file, "line": loc.line if loc else None, "column": loc.col if loc else None,
                      "severity": "error", "message": e.message, "focus": None, "path": None, "value": None,
                      "source": "project", "component": "project"})
    for r in report.results:
        loc = r.location
        items.append({
            "file": loc.file if loc else None, "line": loc.line if loc else None, "column": loc.col if loc else None,
            "severity": r.severity, "message": r.message,
            "focus": _json_term(r.focus), "path": _json_path(r),
            "value": _json_term(r.value), "source": r.source, "component": r.component,
            "focus_short": r.focus_text, "path_short": r.path_text, "value_short": r.value_text, "help": r.help,
        })
    doc = {"conforms": report.conforms(strict), "results": items, "summary": report.summary_dict(strict)}
    return json.dumps(doc, indent=2, ensure_ascii=False)


def _gh_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_prop(text: str) -> str:
    return _gh_data(text).replace(":", "%3A").replace(",", "%2C")


def _gh_command(kind: str, location: Location | None, message: str, file: str | None = None) -> str:
    props = []
    if location is not None:
        props += [f"file={_gh_prop(location.file)}", f"line={location.line}"]
        if location.col and location.col > 1:
            props.append(f"col={location.col}")
    elif file:
        props.append(f"file={_gh_prop(file)}")
    props.append(f"title={_gh_prop('emkg validate')}")
    return f"::{kind} {','.join(props)}::{_gh_data(message)}"


def _render_github(report: Report) -> str:
    lines = [_gh_command("error", p.location, f"syntax error: {p.message}") for p in report.problems]
    lines += [_gh_command("error", e.location, e.message, e.file) for e in report.errors]
    kinds = {"violation": "error", "warning": "warning", "info": "notice"}
    lines += [_gh_command(kinds[r.severity], r.location, f"{r.severity}: {r.message}{r.details()}") for r in report.results]
    lines.append(report.summary())
    return "\n".join(lines)


# --- the command ----------------------------------------------------------------------------------------

def expand_paths(project: Project, paths: Iterable[Path]) -> list[Path]:
    """PATH arguments as Turtle files (folders give their ``*.ttl``), minus the project's own files
    (already in the graph, or shapes, which are never data)."""
    known = {p.resolve() for p in project.all_turtle_files()}
    out: list[Path] = []
    for path in paths:
        if not path.exists():
            raise UsageError(f"{path}: no such file or folder")
        if path.is_dir():
            files = sorted(p for p in path.rglob("*.ttl") if not any(part.startswith(".") for part in p.relative_to(path).parts))
            if not files:
                raise UsageError(f"{path}: no Turtle (*.ttl) files in this folder")
        else:
            files = [path]
        for f in files:
            resolved = f.resolve()
            if resolved in known:
                continue
            known.add(resolved)
            out.append(f)
    return out


def run_validate(project: Project, paths: Sequence[Path] = (), fmt: str = "text", strict: bool = False, qc: bool = True) -> int:
    """``emkg validate``: print the report, return the exit code."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    extra = expand_paths(project, paths)
    started = time.perf_counter()
    shapes = load_shapes(project)
    with _prefetch_analysis(project, shapes, [*project.graph_files(), *extra], qc) or nullcontext():
        graph = load_graph(project, extra)
        report = validate_loaded(project, graph, shapes, qc=qc, reuse=True)
    log.info("validated %d triples in %.2fs", report.triples, time.perf_counter() - started)
    print(render_report(report, fmt, strict=strict))
    return report.exit_code(strict)


__all__ = [
    "DEFAULT_ENGINE", "ENGINES", "ENGINE_ENV", "FORMATS", "default_engine", "ProjectProblem", "QcCheck", "Report", "Result", "ShaclResult", "Shortener",
    "qc_checks", "read_results", "render_report", "run_qc", "run_shacl", "run_validate",
    "validate_loaded",
]
