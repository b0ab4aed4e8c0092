"""Incremental validation: what changed since the last validation, and its results to keep.

For graphs of ``validate.INCREMENTAL_TRIPLES`` or more (a smaller one validates whole in about a
second).

After ``emkg validate`` (or ``emkg build``) the work cache holds, in ``.cache/validate/``:

* ``state.pickle``: under a key of everything but the data (emkg's code, the engine, the shapes,
  the QC queries, the base IRI, the prefixes the messages are written with), the digest of every
  data and ontology file, and the results of every shape group (``shapedeps``) and QC check,
  without their ``FILE:LINE`` (located again each time: an edit moves lines);
* ``sources/DIGEST``: a copy of each of those files as it was validated.

The next validation compares digests. For each file that differs it parses the copy and the file
as it is now, and the predicates of the triples that differ are the *changed predicates*. A shape
group or QC query that reads none of them (``shapedeps``, ``querydeps``) has the same results as
last time. The others are run again, each group on the triples with the predicates it reads only.
A result naming a blank node is never kept (blank node labels change with every parse).

Anything unusual (no state, another key, a missing copy, a file that could not be read, results
the groups cannot place) means a whole validation, which only ever costs time.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import pyoxigraph as ox

from .cache import cache_root, code_fingerprint, enabled, hash_files, read_entry, write_entry
from .load import rebase_iri
from .project import DEFAULT_BASE_IRI, Project

log = logging.getLogger(__name__)

STATE_FORMAT = 1


@dataclass
class Kept:
    """The results of one shape group or QC check, located nowhere (``(result, inverse)`` pairs;
    ``inverse``: the path is an inverse path, for locating)."""

    results: list[tuple]
    problem: object = None  # a QC check's ProjectProblem
    blank: bool = False  # a result names a blank node: never reused


@dataclass
class State:
    files: dict[str, str]  # file name -> digest of its bytes
    groups: dict[str, Kept] = field(default_factory=dict)
    checks: dict[str, Kept] = field(default_factory=dict)  # QC check name + text digest -> rows


def _entry(project: Project) -> Path:
    return cache_root(project) / "validate" / "state.pickle"


def _sources(project: Project) -> Path:
    return cache_root(project) / "validate" / "sources"


def static_key(project: Project, shapes, qc: bool, engine: str, prefixes: dict[str, str]) -> str | None:
    """What the kept results are a function of besides the data (None: cannot be told)."""
    digest = hashlib.sha256(code_fingerprint("validate", "revalidation", "shapedeps", "querydeps", "load", "terms",
                                             "cache", "project").encode("utf-8"))
    digest.update(f"\0{STATE_FORMAT}\0{engine}\0{qc}\0{project.base_iri}\0".encode("utf-8"))
    digest.update(repr(sorted(prefixes.items())).encode("utf-8"))
    for parsed in shapes.files:
        if parsed.problem is None and not parsed.digest:
            return None
        digest.update(f"\0{parsed.name}\0{parsed.digest}".encode("utf-8"))
    if qc and not hash_files(digest, project.qc_dir.glob("*.rq") if project.qc_dir.is_dir() else []):
        return None
    return digest.hexdigest()


def read_state(project: Project, key: str | None) -> State | None:
    if key is None or not enabled():
        return None
    state = read_entry(_entry(project), key)
    return state if isinstance(state, State) else None


def changed_predicates(project: Project, state: State | None, graph) -> set[str] | None:
    """The predicates of the triples that differ between the files as last validated and as
    loaded now; None when that cannot be told (every group and check then runs)."""
    if state is None:
        return None
    current = {f.name: f for f in graph.files}
    if any(f.problem is not None or not f.digest for f in current.values()):
        return None
    changed: set[str] = set()
    for name in sorted(set(current) | set(state.files)):
        now, before = current.get(name), state.files.get(name)
        if now is not None and now.digest == before:
            continue
        old: set[ox.Triple] = set()
        if before is not None:
            copy = _sources(project) / before
            try:
                old = _triples(copy.read_bytes(), now.path if now is not None else copy)
            except (OSError, SyntaxError, ValueError) as exc:
                log.debug("incremental validation: no usable copy of %s (%s)", name, exc)
                return None
        new: set[ox.Triple] = set()
        if now is not None:
            try:
                data = now.path.read_bytes()
            except OSError:
                return None
            if hashlib.sha256(data).hexdigest() != now.digest:
                return None  # edited again since it was loaded
            new = _triples(data, now.path)
        changed |= {t.predicate.value for t in old ^ new}
    if project.base_iri != DEFAULT_BASE_IRI:  # the loader rebases the IRIs it parses
        changed = {rebase_iri(p, project.base_iri) for p in changed}
    return changed


def _triples(data: bytes, path: Path) -> set[ox.Triple]:
    """The triples of a Turtle file's bytes, parsed as the loader parses them (same base IRI)."""
    return {q.triple for q in ox.parse(data, format=ox.RdfFormat.TURTLE, base_iri=path.resolve().as_uri())}


def subgraph(store: ox.Store, predicates: frozenset[str] | set[str]) -> ox.Store:
    """A store with only the triples of ``store`` whose predicate is one of ``predicates``."""
    out = ox.Store()
    for iri in sorted(predicates):
        out.bulk_extend(store.quads_for_pattern(None, ox.NamedNode(iri), None, ox.DefaultGraph()))
    return out


def kept(results: list[tuple], problem: object = None) -> Kept:
    """Results (``(Result, inverse)`` pairs) stripped of their locations, for the state."""
    blank = any(isinstance(r.focus, ox.BlankNode) or isinstance(r.value, ox.BlankNode) for r, _ in results)
    return Kept([(replace(r, location=None), inverse) for r, inverse in results], problem, blank)


def save_state(project: Project, key: str | None, state: State, graph) -> None:
    """Keep ``state`` and a copy of every file it describes (copies no state names are removed)."""
    if key is None or not enabled():
        return
    folder = _sources(project)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for parsed in graph.files:
            target = folder / parsed.digest
            if parsed.digest and not target.exists():
                _copy_if_same(parsed.path, target, parsed.digest)
    except OSError as exc:
        log.debug("incremental validation: copies not kept (%s)", exc)
        return
    write_entry(_entry(project), key, state)
    wanted = set(state.files.values())
    for item in folder.iterdir():
        if item.name not in wanted:
            try:
                item.unlink()
            except OSError:
                pass


def _copy_if_same(source: Path, target: Path, digest: str) -> None:
    """Copy ``source`` to ``target`` if it still has the bytes that were validated."""
    data = source.read_bytes()
    if hashlib.sha256(data).hexdigest() != digest:
        return  # edited since it was loaded: no copy, so the next validation runs in full
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    tmp.replace(target)


__all__ = ["Kept", "State", "changed_predicates", "kept", "read_state", "save_state", "static_key", "subgraph"]
