"""Which triples a SPARQL query's answer can depend on: the predicates it names.

A query whose every triple pattern and property path has constant predicates (no ``?p`` in
predicate position, unless the outermost group joins ``VALUES ?p { IRIs }``; no negated
property set, no ``GRAPH``, ``SERVICE`` or ``FROM``) gives the same
answer on any two graphs that hold the same triples with those predicates: triples with other
predicates are never matched by any of its patterns. So when a build knows which triples changed
since the last one, a stored view whose predicates none of them use has the same rows as last
time (``publish.run_views`` reuses them).

The analysis uses rdflib's SPARQL parser (slow, so the answer for a query text is kept in the
work cache); anything it does not understand means "depends on everything" (None), which only
ever costs a re-run.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Iterable
from pathlib import Path

from .cache import cache_root, code_fingerprint, read_entry, write_entry
from .project import Project

log = logging.getLogger(__name__)

_EVERYTHING = "*"
_OPAQUE = {"GraphGraphPattern", "ServiceGraphPattern", "Graph", "Service", "DescribeQuery", "ConstructQuery"}


class _Everything(Exception):
    """The query can depend on any triple."""


def query_predicates(text: str, project: Project | None = None) -> frozenset[str] | None:
    """The predicate IRIs ``text`` (a SPARQL query) can match; None when it can match any triple
    (or cannot be analysed). Kept in ``.cache/querydeps/`` when ``project`` is given."""
    entry, key = _entry(text, project) if project is not None else (None, "")
    if entry is not None:
        kept = read_entry(entry, key)
        if kept is None and _pending is not None:  # perhaps being worked out there (``wait``: in its own process)
            _pending.wait()
            kept = read_entry(entry, key)
        if isinstance(kept, tuple):
            return None if kept == (_EVERYTHING,) else frozenset(kept)
    answer = _analyse(text)
    if entry is not None:
        write_entry(entry, key, (_EVERYTHING,) if answer is None else tuple(sorted(answer)))
    return answer


def _entry(text: str, project: Project) -> tuple[Path, str]:
    """Where the work cache keeps the answer for ``text``, and its key."""
    key = hashlib.sha256(code_fingerprint("querydeps").encode("utf-8") + b"\0" + text.encode("utf-8")).hexdigest()
    return cache_root(project) / "querydeps" / f"{key[:24]}.pickle", key


class Prefetch:
    """The queries ``texts`` analysed into the work cache by a forked child process, for a later
    :func:`query_predicates` to find there. The SPARQL parser takes about 60 ms a query: a second
    or more for the stored views, the QC queries or the shapes' SPARQL, that a command would
    otherwise spend on one core while the other is idle (loading the sources runs on one).

    Nothing is started when every answer is cached already, the cache is off, or ``os.fork`` is
    missing. While the child runs, a :func:`query_predicates` that misses the cache waits for it
    (:meth:`wait`; a child that failed only means the answer is worked out then, here), in this
    process only: the processes it forks later inherit the object, never its child.
    :meth:`stop` ends a child no longer needed: call it when the command ends (or use the object
    as a context manager)."""

    def __init__(self, texts: Iterable[str], project: Project) -> None:
        from .cache import enabled
        from .forked import Forked

        global _pending
        self._child: Forked | None = None
        self._lock = threading.Lock()
        self.pid = os.getpid()  # the process whose child it is
        todo = [t for t in dict.fromkeys(texts) if read_entry(*_entry(t, project)) is None]
        if todo and enabled() and hasattr(os, "fork"):
            self._child = Forked(lambda: len([query_predicates(t, project) for t in todo]))
            _pending = self
            log.debug("querydeps: %d queries analysed in a child process", len(todo))

    def __enter__(self) -> Prefetch:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def wait(self) -> None:
        if self.pid != os.getpid():
            return
        with self._lock:  # a second caller (another thread) waits here for the first
            child, self._child = self._child, None
            if child is not None:
                try:
                    child.result()
                except Exception as exc:  # noqa: BLE001 - the answers are worked out here instead
                    log.debug("querydeps: the child process failed (%s); analysing here", exc)
            self._done()

    def stop(self) -> None:
        if self.pid != os.getpid():
            return
        with self._lock:
            child, self._child = self._child, None
            if child is not None:
                child.stop()
            self._done()

    def _done(self) -> None:
        global _pending
        if _pending is self:
            _pending = None


_pending: Prefetch | None = None  # the one whose child is running, if any


def _analyse(text: str) -> frozenset[str] | None:
    try:
        from rdflib.plugins.sparql import prepareQuery

        query = prepareQuery(text)
    except Exception as exc:  # noqa: BLE001 - not understood: depends on everything
        log.debug("query not analysed (%s): it depends on every triple", exc)
        return None
    predicates: set[str] = set()
    try:
        if getattr(query.algebra, "datasetClause", None):
            raise _Everything()
        top, bound = _top_values(query.algebra)
        _walk(query.algebra, predicates, _Scope(top, bound))
    except _Everything:
        return None
    return frozenset(predicates)


class _Scope:
    """Variables that every answer binds to one of a few IRIs (``VALUES ?p { ... }`` joined into
    the outermost group): a pattern with such a variable as predicate can match only those. Inside
    a nested SELECT a variable of that name is another variable."""

    def __init__(self, top, bound: dict[str, frozenset[str]]) -> None:
        self.top = top
        self.bound = bound


_MODIFIERS = {"SelectQuery", "AskQuery", "Distinct", "Reduced", "Project", "OrderBy", "Slice", "Filter", "Extend"}


def _top_values(algebra) -> tuple[object, dict[str, frozenset[str]]]:
    """The outermost query's Project node, and the variables its VALUES clauses bind to IRIs only."""
    from rdflib.plugins.sparql.parserutils import CompValue
    from rdflib.term import URIRef

    node, top = algebra, None
    while isinstance(node, CompValue) and node.name in _MODIFIERS:
        if node.name == "Project" and top is None:
            top = node
        node = node.get("p")
    bound: dict[str, frozenset[str]] = {}
    todo = [node]
    while todo:
        item = todo.pop()
        if not isinstance(item, CompValue):
            continue
        if item.name == "Join":
            todo.extend((item.get("p1"), item.get("p2")))
        elif item.name in ("LeftJoin", "Minus"):  # every answer extends one of the left side's
            todo.append(item.get("p1"))
        elif item.name == "ToMultiSet" and isinstance(item.get("p"), CompValue) and item.p.name == "values":
            rows = item.p.res or []
            for var in {v for row in rows for v in row}:
                if rows and all(isinstance(row.get(var), URIRef) for row in rows):
                    bound[str(var)] = frozenset(str(row[var]) for row in rows) | bound.get(str(var), frozenset())
    return top, bound


def _walk(node, predicates: set[str], scope: _Scope) -> None:
    from rdflib.paths import Path as RdfPath
    from rdflib.plugins.sparql.parserutils import CompValue

    if isinstance(node, CompValue):
        if node.name in _OPAQUE:
            raise _Everything()
        if node.name in ("Project", "SubSelect") and node is not scope.top and scope.bound:
            scope = _Scope(scope.top, {})  # a nested SELECT: its variables are its own
        for key, value in node.items():
            if key == "triples" and isinstance(value, (list, tuple)):
                for pattern in value:
                    _pattern(pattern, predicates, scope)
            if key != "_vars":
                _walk(value, predicates, scope)
    elif isinstance(node, dict):
        for value in node.values():
            _walk(value, predicates, scope)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _walk(value, predicates, scope)
    elif isinstance(node, RdfPath):
        _path(node, predicates)


def _pattern(pattern, predicates: set[str], scope: _Scope) -> None:
    """A triple (s, p, o), or the parser's flat list s p o s p o ...: every predicate."""
    if not isinstance(pattern, (list, tuple)) or len(pattern) % 3:
        raise _Everything()
    for i in range(1, len(pattern), 3):
        _predicate(pattern[i], predicates, scope)


def _predicate(term, predicates: set[str], scope: _Scope | None = None) -> None:
    from rdflib.paths import Path as RdfPath
    from rdflib.term import URIRef, Variable

    if isinstance(term, URIRef):
        predicates.add(str(term))
    elif isinstance(term, RdfPath):
        _path(term, predicates)
    elif isinstance(term, Variable) and scope is not None and str(term) in scope.bound:
        predicates.update(scope.bound[str(term)])
    else:  # a variable (or anything else) in predicate position
        raise _Everything()


def _path(path, predicates: set[str]) -> None:
    from rdflib.paths import AlternativePath, InvPath, MulPath, NegatedPath, SequencePath

    if isinstance(path, NegatedPath):
        raise _Everything()
    if isinstance(path, (SequencePath, AlternativePath)):
        parts: Iterable = path.args
    elif isinstance(path, InvPath):
        parts = [path.arg]
    elif isinstance(path, MulPath):
        parts = [path.path]
    else:
        raise _Everything()
    for part in parts:
        _predicate(part, predicates)


def predicates_of(ntriples: Iterable[bytes]) -> set[str]:
    """The predicates of N-Triples lines (a build's changed triples)."""
    import pyoxigraph as ox

    data = b"\n".join(ntriples)
    if not data:
        return set()
    return {t.predicate.value for t in ox.parse(data, format=ox.RdfFormat.N_TRIPLES)}
