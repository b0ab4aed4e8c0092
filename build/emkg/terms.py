"""Conversions between pyoxigraph and rdflib terms, and N-Triples-style term text for queries."""

from __future__ import annotations

from collections.abc import Iterable

import pyoxigraph as ox
import rdflib
from rdflib.term import Node

XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"
RDF_LANGSTRING = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString"


def ox_to_rdflib(term: ox.NamedNode | ox.BlankNode | ox.Literal) -> Node:
    if isinstance(term, ox.NamedNode):
        return rdflib.URIRef(term.value)
    if isinstance(term, ox.BlankNode):
        return rdflib.BNode(term.value)
    if term.language:
        return rdflib.Literal(term.value, lang=term.language)
    datatype = term.datatype.value
    if datatype == XSD_STRING:
        return rdflib.Literal(term.value)
    return rdflib.Literal(term.value, datatype=rdflib.URIRef(datatype))


def rdflib_to_ox(term: Node) -> ox.NamedNode | ox.BlankNode | ox.Literal:
    if isinstance(term, rdflib.URIRef):
        return ox.NamedNode(str(term))
    if isinstance(term, rdflib.BNode):
        return ox.BlankNode(str(term))
    if isinstance(term, rdflib.Literal):
        if term.language:
            return ox.Literal(str(term), language=term.language)
        if term.datatype is not None:
            return ox.Literal(str(term), datatype=ox.NamedNode(str(term.datatype)))
        return ox.Literal(str(term))
    raise TypeError(f"not an RDF term: {term!r}")


def store_to_rdflib(store: ox.Store, prefixes: dict[str, str] | None = None) -> rdflib.Graph:
    """The default graph of a store as an rdflib Graph, literals kept lexically as written."""
    graph = rdflib.Graph(bind_namespaces="none")
    for prefix, namespace in sorted((prefixes or {}).items()):
        graph.bind(prefix, namespace, override=True)
    add = graph.add
    for quad in store.quads_for_pattern(None, None, None, ox.DefaultGraph()):
        add((ox_to_rdflib(quad.subject), ox_to_rdflib(quad.predicate), ox_to_rdflib(quad.object)))
    return graph


def triples_to_store(triples: Iterable[tuple[Node, Node, Node]]) -> ox.Store:
    store = ox.Store()
    store.bulk_extend(
        ox.Quad(rdflib_to_ox(s), rdflib_to_ox(p), rdflib_to_ox(o), ox.DefaultGraph()) for s, p, o in triples
    )
    return store


def sparql_term(term: ox.NamedNode | ox.Literal) -> str:
    """A term as SPARQL/N-Triples text, safely escaped (used to bind parameters through VALUES)."""
    if isinstance(term, (ox.NamedNode, ox.Literal)):
        return str(term)
    raise TypeError(f"only IRIs and literals can be bound as parameters, not {term!r}")
