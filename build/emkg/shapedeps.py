"""Which triples a shape's validation results depend on: the predicates it reads.

For incremental validation (``validate.validate_loaded(..., reuse=True)``): after an edit, a
shape none of whose predicates changed gives the same results as last time, so only the other
shapes are run again. The shapes are split into *groups*:

* a group starts from each *targeted* shape (one with ``sh:targetClass``, ``sh:targetNode``,
  ``sh:targetSubjectsOf``, ``sh:targetObjectsOf`` or ``sh:target``);
* its *reported* shapes are those whose results it produces: itself and its ``sh:property``
  shapes (a result names one of them as ``sh:sourceShape``); groups that share a reported shape
  are merged, so every result belongs to exactly one group;
* its *read* predicates are those of its targets (``rdf:type`` and ``rdfs:subClassOf`` for a
  class; the predicate of ``sh:targetSubjectsOf``; a SPARQL target's, by ``querydeps``), of
  every path, of ``sh:class`` (``rdf:type``, ``rdfs:subClassOf``), of ``sh:equals`` and the
  other property pairs, and of SPARQL constraints (``querydeps``), through ``sh:node``,
  ``sh:property``, ``sh:or``/``sh:and``/``sh:xone``/``sh:not`` and ``sh:qualifiedValueShape``
  to any depth.

Anything not understood (``sh:closed``, a SHACL parameter emkg does not know, a SPARQL query
``querydeps`` cannot analyse, a shape that is also a class, a parameter not in SHACL core) reads
"everything" (None): that group is always run again, which only ever costs time. Shapes that
declare constraint components of their own, or whose targeted shapes are blank nodes or classes,
are not split at all (every validation is whole).

A result is a function of the triples with the predicates its group reads (every constraint above
looks at the data only through those predicates), so on two graphs that agree on those triples
the group gives the same results.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import rdflib
from rdflib.collection import Collection
from rdflib.namespace import RDF, RDFS, SH

from .project import Project

log = logging.getLogger(__name__)

TARGETS = (SH.targetClass, SH.targetNode, SH.targetSubjectsOf, SH.targetObjectsOf, SH.target)
# links from a shape to the shapes it evaluates
_SHAPE_LINKS = (SH.property, SH.node, SH["not"], SH.qualifiedValueShape)
_LIST_LINKS = (SH["or"], SH["and"], SH.xone)
_CLASS_READS = frozenset({str(RDF.type), str(RDFS.subClassOf)})
# constraint parameters that look only at the value nodes (their deps are the path's)
_VALUE_ONLY = {SH[name] for name in (
    "datatype", "nodeKind", "minCount", "maxCount", "minLength", "maxLength", "pattern", "flags",
    "languageIn", "uniqueLang", "in", "hasValue", "minInclusive", "maxInclusive", "minExclusive",
    "maxExclusive", "qualifiedMinCount", "qualifiedMaxCount", "qualifiedValueShapesDisjoint",
)}
_PAIRS = {SH.equals, SH.disjoint, SH.lessThan, SH.lessThanOrEquals}
# what describes a shape without constraining anything
_NEUTRAL = {SH.severity, SH.message, SH.deactivated, SH.name, SH.description, SH.order, SH.group,
            SH.defaultValue, SH.prefixes, SH.declare, SH.prefix, SH.namespace, SH.select, SH.path,
            SH.targetClass, SH.targetNode, SH.targetSubjectsOf, SH.targetObjectsOf, SH.target,
            SH.property, SH.node, SH["not"], SH.qualifiedValueShape, SH["or"], SH["and"], SH.xone,
            SH.sparql, SH.closed, SH.ignoredProperties, SH["class"]}


class _Everything(Exception):
    """The shape can depend on any triple."""


@dataclass
class Group:
    """Shapes whose results are kept and re-made together."""

    key: str  # the sorted IRIs of its targeted shapes (stable across runs)
    roots: list[rdflib.term.Node]  # its targeted shapes
    reported: set[rdflib.term.Node]  # the shapes its results name as sh:sourceShape
    reads: frozenset[str] | None  # None: any triple


@dataclass
class ShapePlan:
    groups: dict[str, Group]
    by_shape: dict[rdflib.term.Node, str]  # reported shape -> group key

    def group_of(self, shape: rdflib.term.Node | None) -> str | None:
        return self.by_shape.get(shape) if shape is not None else None


def plan_shapes(shapes: rdflib.Graph, project: Project | None = None) -> ShapePlan | None:
    """The groups of ``shapes`` and what each reads; None if the shapes cannot be split (a
    targeted shape without an IRI, or a shape that is also a class: implicit class targets)."""
    roots = sorted({s for p in TARGETS for s in shapes.subjects(p, None)}, key=str)
    if any(not isinstance(s, rdflib.URIRef) for s in roots):
        log.debug("incremental validation off: a targeted shape is a blank node")
        return None
    if (None, RDF.type, SH.ConstraintComponent) in shapes:
        log.debug("incremental validation off: the shapes declare constraint components of their own")
        return None
    for shape in set(shapes.subjects(RDF.type, SH.NodeShape)) | set(shapes.subjects(RDF.type, SH.PropertyShape)):
        if (shape, RDF.type, RDFS.Class) in shapes or (shape, RDF.type, rdflib.OWL.Class) in shapes:
            log.debug("incremental validation off: %s is a shape and a class", shape)
            return None
    # union-find over the targeted shapes that report through a shared shape
    parent = {r: r for r in roots}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    owner: dict[rdflib.term.Node, rdflib.term.Node] = {}
    for root in roots:
        for shape in _reported(shapes, root):
            if shape in owner:
                a, b = find(owner[shape]), find(root)
                if a != b:
                    parent[b] = a
            else:
                owner[shape] = root
    members: dict[rdflib.term.Node, list] = {}
    for root in roots:
        members.setdefault(find(root), []).append(root)
    groups: dict[str, Group] = {}
    by_shape: dict[rdflib.term.Node, str] = {}
    for group_roots in members.values():
        key = " ".join(sorted(str(r) for r in group_roots))
        reported = set().union(*(_reported(shapes, r) for r in group_roots))
        groups[key] = Group(key, group_roots, reported, _group_reads(shapes, group_roots, project))
        for shape in reported:
            by_shape[shape] = key
    return ShapePlan(groups, by_shape)


def _reported(shapes: rdflib.Graph, root) -> set:
    """``root`` and its property shapes (to any depth: a property shape's own ``sh:property``)."""
    out, todo = {root}, [root]
    while todo:
        for prop in shapes.objects(todo.pop(), SH.property):
            if prop not in out:
                out.add(prop)
                todo.append(prop)
    return out


def _group_reads(shapes: rdflib.Graph, roots: Iterable, project: Project | None) -> frozenset[str] | None:
    reads: set[str] = set()
    try:
        seen: set = set()
        for root in roots:
            _shape_reads(shapes, root, reads, seen, project)
    except _Everything as exc:
        log.debug("shape group %s reads every triple: %s", " ".join(str(r) for r in roots), exc)
        return None
    return frozenset(reads)


def _reachable(starts: Iterable, neighbours) -> set:
    """``starts`` and every node reached from them through ``neighbours(node)``, to any depth."""
    seen: set = set()
    todo = list(starts)
    while todo:
        node = todo.pop()
        if node in seen:
            continue
        seen.add(node)
        todo.extend(neighbours(node))
    return seen


def evaluated(shapes: rdflib.Graph, roots: Iterable) -> set:
    """Every shape the engine evaluates from ``roots`` (through any shape link, to any depth)."""
    return _reachable(roots, lambda shape: _linked_shapes(shapes, shape))


def _linked_shapes(shapes: rdflib.Graph, shape) -> list:
    out = [o for p in _SHAPE_LINKS for o in shapes.objects(shape, p)]
    for p in _LIST_LINKS:
        for head in shapes.objects(shape, p):
            out.extend(Collection(shapes, head))
    return out


def _shape_reads(shapes: rdflib.Graph, shape, reads: set[str], seen: set, project: Project | None) -> None:
    if shape in seen:
        return
    seen.add(shape)
    for p, o in shapes.predicate_objects(shape):
        if p == RDF.type or not str(p).startswith(str(SH)):
            continue
        if p in (SH.targetClass, SH["class"]):
            reads |= _CLASS_READS
        elif p in (SH.targetSubjectsOf, SH.targetObjectsOf) or p in _PAIRS:
            reads.add(str(o))
        elif p == SH.target:
            _sparql_reads(shapes, o, reads, project, "a SPARQL target")
        elif p == SH.path:
            _path_reads(shapes, o, reads)
        elif p == SH.sparql:
            _sparql_reads(shapes, o, reads, project, "a SPARQL constraint")
        elif p == SH.closed:
            if o.toPython() is True:
                raise _Everything("sh:closed")
        elif p in _VALUE_ONLY or p in _NEUTRAL:
            pass
        else:
            raise _Everything(f"{p} is not a SHACL core parameter emkg knows")
    for linked in _linked_shapes(shapes, shape):
        _shape_reads(shapes, linked, reads, seen, project)


def _path_reads(shapes: rdflib.Graph, path, reads: set[str]) -> None:
    if isinstance(path, rdflib.URIRef):
        reads.add(str(path))
        return
    if (path, RDF.first, None) in shapes:
        for part in Collection(shapes, path):
            _path_reads(shapes, part, reads)
        return
    for p in (SH.inversePath, SH.zeroOrMorePath, SH.oneOrMorePath, SH.zeroOrOnePath):
        inner = shapes.value(path, p)
        if inner is not None:
            _path_reads(shapes, inner, reads)
            return
    alternatives = shapes.value(path, SH.alternativePath)
    if alternatives is not None:
        for part in Collection(shapes, alternatives):
            _path_reads(shapes, part, reads)
        return
    raise _Everything(f"a path emkg cannot read: {path}")


def sparql_prefixes(shapes: rdflib.Graph, node) -> str:
    """The PREFIX lines a SHACL-SPARQL node declares (``sh:prefixes`` / ``sh:declare``)."""
    return "".join(
        f"PREFIX {shapes.value(decl, SH.prefix)}: <{shapes.value(decl, SH.namespace)}>\n"
        for holder in shapes.objects(node, SH.prefixes) for decl in shapes.objects(holder, SH.declare)
    )


def sparql_texts(shapes: rdflib.Graph) -> list[str]:
    """The query of every SHACL-SPARQL constraint and target, as the analysis reads it."""
    return [_sparql_text(shapes, node) for node in sorted(set(shapes.subjects(SH.select, None)))]


def _sparql_text(shapes: rdflib.Graph, node) -> str:
    # $PATH stands for the property shape's path, whose predicates are read already
    return sparql_prefixes(shapes, node) + str(shapes.value(node, SH.select)).replace("$PATH", "<urn:emkg:path>")


def _sparql_reads(shapes: rdflib.Graph, node, reads: set[str], project: Project | None, what: str) -> None:
    from .querydeps import query_predicates

    if shapes.value(node, SH.select) is None:
        raise _Everything(f"{what} without sh:select")
    found = query_predicates(_sparql_text(shapes, node), project)
    if found is None:
        raise _Everything(f"{what} whose predicates cannot be told")
    reads |= found - {"urn:emkg:path"}


def reduced_shapes(shapes: rdflib.Graph, roots: Iterable) -> rdflib.Graph:
    """A shapes graph that runs only ``roots``: the triples of every shape they evaluate (and of
    the blank nodes, lists and prefix declarations those use), with the targets of every other
    shape removed (a shape reached through ``sh:node`` is evaluated, never targeted)."""
    roots = set(roots)
    kept: dict = {}  # node -> its triples that stay (not the targets of a shape that is not run)

    def followed(node) -> list:  # what those triples lead to that must come along
        pairs = kept[node] = [(p, o) for p, o in shapes.predicate_objects(node) if not (p in TARGETS and node not in roots)]
        return [o for p, o in pairs if isinstance(o, rdflib.BNode) or p in (SH.prefixes, SH.sparql, SH.target, SH.declare)]

    out = rdflib.Graph()
    for prefix, namespace in shapes.namespaces():
        out.bind(prefix, namespace, override=True)
    for node in _reachable(evaluated(shapes, roots), followed):
        for p, o in kept[node]:
            out.add((node, p, o))
    return out


__all__ = ["Group", "ShapePlan", "evaluated", "plan_shapes", "reduced_shapes", "sparql_prefixes", "sparql_texts"]
