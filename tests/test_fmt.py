"""``emkg fmt``: the canonical Turtle layout is lossless, deterministic and idempotent."""

from __future__ import annotations

import os
import random
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pyoxigraph as ox
import pytest
import rdflib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rdflib.compare import isomorphic

from emkg import fmt
from emkg.cli import main
from emkg.project import open_project

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data" / "fmt"


# --- helpers ---------------------------------------------------------------------------------------

def ox_graph(text: str) -> rdflib.Graph:
    """The graph pyoxigraph reads, as rdflib terms with literals kept exactly (no normalisation)."""
    graph = rdflib.Graph()

    def node(term):
        if isinstance(term, ox.NamedNode):
            return rdflib.URIRef(term.value)
        if isinstance(term, ox.BlankNode):
            return rdflib.BNode(term.value)
        return rdflib.Literal(str(term))  # the N-Triples text: "01"^^xsd:integer stays itself

    for quad in ox.parse(text.encode("utf-8"), format=ox.RdfFormat.TURTLE, base_iri=fmt.BASE):
        graph.add((node(quad.subject), node(quad.predicate), node(quad.object)))
    return graph


def canonical(text: str) -> set[str]:
    """The triples pyoxigraph reads, blank nodes renamed by RDFC-1.0, as exact N-Triples text."""
    dataset = ox.Dataset(ox.parse(text.encode("utf-8"), format=ox.RdfFormat.TURTLE, base_iri=fmt.BASE))
    dataset.canonicalize(ox.CanonicalizationAlgorithm.RDFC_1_0)
    return {str(quad) for quad in dataset}


def assert_lossless(before: str, after: str) -> None:
    """Same graph: RDFC-1.0 canonical forms equal (pyoxigraph), or rdflib finds them isomorphic."""
    a, b = canonical(before), canonical(after)
    if a != b:
        assert len(a) == len(b), "formatted text has a different number of triples"
        assert isomorphic(ox_graph(before), ox_graph(after)), "formatted text is not the same graph"


def tmp_project(tmp_path: Path, files: dict[str, str] | None = None) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    for folder in ("ontology", "data", "shapes"):
        (root / folder).mkdir()
    for rel, text in (files or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(text.encode("utf-8"))
    return root


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "emkg.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


PREFIXES = """@prefix ex: <http://example.org/> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
"""


def body(text: str) -> str:
    """The formatted text after the prefix block."""
    return fmt.format_turtle(PREFIXES + text, "t.ttl").split("\n\n", 1)[1]


# --- the golden pair -------------------------------------------------------------------------------

def test_messy_file_formats_to_the_expected_canonical_text() -> None:
    messy = (DATA / "messy.ttl").read_text(encoding="utf-8")
    expected = (DATA / "messy.expected.ttl").read_text(encoding="utf-8")
    assert fmt.format_turtle(messy, "messy.ttl") == expected


def test_expected_file_is_a_fixed_point_and_the_same_graph() -> None:
    messy = (DATA / "messy.ttl").read_text(encoding="utf-8")
    expected = (DATA / "messy.expected.ttl").read_text(encoding="utf-8")
    assert fmt.format_turtle(expected, "messy.expected.ttl") == expected
    assert_lossless(messy, expected)


def test_a_second_parser_reads_the_same_graph_from_the_output() -> None:
    """rdflib (not pyoxigraph) parses input and output to isomorphic graphs: the layout is portable."""
    messy = (DATA / "messy.ttl").read_text(encoding="utf-8")
    expected = (DATA / "messy.expected.ttl").read_text(encoding="utf-8")
    a, b = rdflib_graph(messy), rdflib_graph(expected)
    assert len(a) == len(b) > 40
    assert isomorphic(a, b)


def rdflib_graph(text: str) -> rdflib.Graph:
    """rdflib's reading of a text, language tags in lower case (RDF: they are case-insensitive)."""
    graph = rdflib.Graph()
    for s, p, o in rdflib.Graph().parse(data=text, format="turtle"):
        if isinstance(o, rdflib.Literal) and o.language:
            o = rdflib.Literal(str(o), lang=o.language.lower())
        graph.add((s, p, o))
    return graph


def test_statement_order_in_the_input_does_not_change_the_output() -> None:
    messy = (DATA / "messy.ttl").read_text(encoding="utf-8")
    expected = (DATA / "messy.expected.ttl").read_text(encoding="utf-8")
    # shuffle the statements of the canonical text (comments travel with their subject)
    head, rest = expected.split("\n\n", 1)
    prefixes, blocks = rest.split("\n\n", 1)
    parts = blocks.rstrip("\n").split("\n\n")
    for seed in range(5):
        random.Random(seed).shuffle(parts)
        shuffled = head + "\n\n" + "\n".join(reversed(prefixes.split("\n"))) + "\n\n" + "\n\n".join(parts) + "\n"
        assert fmt.format_turtle(shuffled, "shuffled.ttl") == expected
    assert messy != expected


def test_golden_output_has_the_promised_layout() -> None:
    expected = (DATA / "messy.expected.ttl").read_text(encoding="utf-8")
    assert expected.endswith(".\n") and not expected.endswith("\n\n")
    assert "\r" not in expected and "\t" not in expected
    assert "\n\n\n" not in expected
    lines = expected.split("\n")
    prefix_lines = [line for line in lines if line.startswith("@prefix")]
    assert prefix_lines == sorted(prefix_lines)
    assert "@prefix unused: <https://example.org/unused/> ." in prefix_lines  # declared prefixes are kept
    assert lines[0].startswith("# emkg test fixture")  # the header stays on top
    for line in lines:
        assert line == line.rstrip()
        indent = len(line) - len(line.lstrip(" "))
        assert indent % 4 == 0 or line.startswith(("with ", "and "))  # long-string continuation lines


# --- terms -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "value",
    [
        "", "plain", 'a "quote"', "back\\slash", "ends with \\", "line\nbreak", "ends with quote\n\"",
        'ends with two\n""', 'three """ inside\n', '\n"""', '""""\n""""', "tab\tand\rreturn\n",
        "\u2028separator\u2029", "zero\u200bwidth", "nul\x00and\x1fcontrols\x7f", "'''\n'''", "\\\"\n\\\"",
        "ünïcödé 日本語 🎉\n", "#not a comment\n# nor this", "<b>markup</b> &amp; \"entities\"",
    ],
)
def test_strings_round_trip_exactly(value: str) -> None:
    text = fmt.quote_string(value)
    assert ("\n" in value) == text.startswith('"""')
    quads = list(ox.parse(f"<http://x/s> <http://x/p> {text} .".encode(), format=ox.RdfFormat.TURTLE))
    assert quads[0].object.value == value
    graph = rdflib.Graph().parse(data=f"<http://x/s> <http://x/p> {text} .", format="turtle")
    assert str(next(iter(graph.objects()))) == value


def test_non_canonical_numbers_keep_their_lexical_form() -> None:
    out = body(
        'ex:s ex:p "01"^^xsd:integer , "+5"^^xsd:integer , "-0"^^xsd:integer , 7 , "8"^^xsd:integer , -9 , '
        '"1.50"^^xsd:decimal , ".5"^^xsd:decimal , 2.5 , "-0.0"^^xsd:decimal , "1"^^xsd:decimal , '
        '1e3 , "1.0E3"^^xsd:double , "TRUE"^^xsd:boolean , "1"^^xsd:boolean , false .\n'
    )
    for kept in ['"01"^^xsd:integer', '"+5"^^xsd:integer', '"-0"^^xsd:integer', '"1.50"^^xsd:decimal',
                 '".5"^^xsd:decimal', '"-0.0"^^xsd:decimal', '"1"^^xsd:decimal', '"1e3"^^xsd:double',
                 '"TRUE"^^xsd:boolean', '"1"^^xsd:boolean']:
        assert f"        {kept} ," in out or f"        {kept} ." in out, kept
    for short in ["7", "8", "-9", "2.5", "1.0E3", "false"]:
        assert re.search(rf"^        {re.escape(short)} [,.]$", out, re.M), short


def test_datatypes_and_language_tags() -> None:
    out = body('ex:s ex:p "2020-01-01"^^xsd:date , "x"^^<http://other.example/dt> , "y"@EN-gb , "z"@zh-hant-tw , "s"^^xsd:string .\n')
    assert '"2020-01-01"^^xsd:date' in out
    assert '"x"^^<http://other.example/dt>' in out
    assert '"y"@en-GB' in out and '"z"@zh-Hant-TW' in out
    assert '        "s" ' in out  # xsd:string is the plain form


@pytest.mark.parametrize(
    ("iri", "written"),
    [
        ("http://example.org/a", "ex:a"),
        ("http://example.org/2016-05", "ex:2016-05"),
        ("http://example.org/a.b", "ex:a.b"),
        ("http://example.org/a:b", "ex:a:b"),
        ("http://example.org/a%20b", "ex:a%20b"),
        ("http://example.org/", "ex:"),
        ("http://example.org/_x", "ex:_x"),
        ("http://example.org/trailing.", "<http://example.org/trailing.>"),
        ("http://example.org/-lead", "<http://example.org/-lead>"),
        ("http://example.org/a/b", "<http://example.org/a/b>"),
        ("http://example.org/a(b)", "<http://example.org/a(b)>"),
        ("http://example.org/a#b", "<http://example.org/a#b>"),
        ("http://example.org/a~b", "<http://example.org/a~b>"),
        ("http://example.org/é", "ex:é"),
        ("http://other.example/x", "<http://other.example/x>"),
    ],
)
def test_iris_are_prefixed_only_when_the_local_name_is_valid(iri: str, written: str) -> None:
    out = body(f"ex:s ex:p <{iri}> .\n")
    assert out == f"ex:s\n    ex:p {written} .\n"
    assert_lossless(PREFIXES + f"ex:s ex:p <{iri}> .\n", PREFIXES + out)


def test_the_longest_namespace_wins_and_falls_back_to_a_shorter_one() -> None:
    text = "@prefix a: <http://ex.org/> .\n@prefix b: <http://ex.org/x/> .\na:s a:p <http://ex.org/x/y> , <http://ex.org/x/y/z> .\n"
    out = fmt.format_turtle(text, "t.ttl")
    assert "        b:y .\n" in out
    assert "        a:x/z" not in out and "<http://ex.org/x/y/z>" in out


def test_relative_iris_stay_relative() -> None:
    text = "<a> <#p> <../up> , <> , </abs> , <sub/x?q=1#f> , <//host.example/x> .\n"
    out = fmt.format_turtle(text, "t.ttl")
    assert out == "<a>\n    <#p>\n        <../up> ,\n        <//host.example/x> ,\n        </abs> ,\n        <> ,\n        <sub/x?q=1#f> .\n"
    assert fmt.format_turtle(out, "t.ttl") == out
    base = "file:///some/where/deep/in/a/tree/of/folders/file.ttl"
    a = {str(q) for q in ox.parse(text.encode(), format=ox.RdfFormat.TURTLE, base_iri=base)}
    b = {str(q) for q in ox.parse(out.encode(), format=ox.RdfFormat.TURTLE, base_iri=base)}
    assert a == b


def test_base_directive_is_resolved_and_dropped() -> None:
    out = fmt.format_turtle("@base <http://example.org/> .\n@prefix ex: <http://example.org/> .\n<s> <p> <o> .\n", "t.ttl")
    assert out == "@prefix ex: <http://example.org/> .\n\nex:s\n    ex:p ex:o .\n"


# --- blocks, predicates and objects ----------------------------------------------------------------

def test_block_layout_and_predicate_order() -> None:
    out = body(
        'ex:b ex:z 1 ; <http://www.w3.org/2004/02/skos/core#prefLabel> "p" ; ex:a 2 ; rdfs:label "l" ; a ex:T .\n'
        "ex:a a ex:U , ex:T ; ex:m ex:y , ex:x , \"lit\" , 3 .\n"
    )
    assert out == (
        "ex:a\n"
        "    a\n        ex:T ,\n        ex:U ;\n"
        "    ex:m\n        ex:x ,\n        ex:y ,\n        \"lit\" ,\n        3 .\n"
        "\n"
        "ex:b\n"
        "    a ex:T ;\n"
        '    rdfs:label "l" ;\n'
        '    <http://www.w3.org/2004/02/skos/core#prefLabel> "p" ;\n'
        "    ex:a 2 ;\n"
        "    ex:z 1 .\n"
    )


def test_single_use_blank_nodes_are_inlined_and_nested() -> None:
    out = body("ex:s ex:p [ ex:q [ ex:r 1 ] ; a ex:T ] ; ex:e [] .\n")
    assert out == (
        "ex:s\n"
        "    ex:e [] ;\n"
        "    ex:p [\n"
        "        a ex:T ;\n"
        "        ex:q [\n"
        "            ex:r 1\n"
        "        ]\n"
        "    ] .\n"
    )


def test_several_inlined_blank_nodes_under_one_predicate() -> None:
    out = body("ex:s ex:p [ ex:n 2 ] , [ ex:n 1 ] .\n")
    assert out == "ex:s\n    ex:p\n        [\n            ex:n 1\n        ] ,\n        [\n            ex:n 2\n        ] .\n"


def test_collections() -> None:
    out = body('ex:s ex:list ( 3 1 2 ) ; ex:empty () ; ex:nested ( ( "a" ) [ ex:p 1 ] ) .\n')
    assert "    ex:list ( 3 1 2 ) ;\n" in out
    assert "    ex:empty () ;\n" in out
    assert "    ex:nested (\n        ( \"a\" )\n        [\n            ex:p 1\n        ]\n    ) .\n" in out
    long = body("ex:s ex:list ( " + " ".join(f'"item number {i}"' for i in range(12)) + " ) .\n")
    assert long.startswith("ex:s\n    ex:list (\n        \"item number 0\"\n        \"item number 1\"\n")
    assert_lossless(PREFIXES + 'ex:s ex:list ( 3 1 2 ) ; ex:empty () ; ex:nested ( ( "a" ) [ ex:p 1 ] ) .\n', PREFIXES + out)


def test_malformed_lists_are_not_collections() -> None:
    text = PREFIXES + "ex:s ex:p _:l1 .\n_:l1 rdf:first 1 ; rdf:rest _:l2 .\n_:l2 rdf:first 2 ; rdf:rest ex:notnil .\n"
    out = fmt.format_turtle(text, "t.ttl")
    assert "(" not in out
    assert_lossless(text, out)
    extra = PREFIXES + "ex:s ex:p ( 1 2 ) .\nex:t ex:q [ rdf:first 1 ; rdf:rest () ; ex:x 1 ] .\n"
    out = fmt.format_turtle(extra, "t.ttl")
    assert "ex:p ( 1 2 )" in out and "rdf:first 1 ;" in out
    assert_lossless(extra, out)


def test_shared_blank_nodes_get_content_labels_that_do_not_depend_on_parser_ids() -> None:
    text = PREFIXES + "ex:a ex:p _:x .\nex:b ex:p _:x .\n_:x ex:v 1 .\n"
    renamed = PREFIXES + "ex:b ex:p _:other .\n_:other ex:v 1 .\nex:a ex:p _:other .\n"
    out = fmt.format_turtle(text, "t.ttl")
    assert out == fmt.format_turtle(renamed, "t.ttl")
    label = re.search(r"_:b[0-9a-f]{8}\b", out)
    assert label is not None
    assert out.count(label.group()) == 3
    changed = fmt.format_turtle(text.replace("ex:v 1", "ex:v 2"), "t.ttl")
    assert label.group() not in changed  # the label follows the content


def test_indistinguishable_blank_nodes_get_numbered_labels() -> None:
    text = PREFIXES + "ex:a ex:p _:x , _:y .\nex:b ex:p _:x , _:y .\n"
    out = fmt.format_turtle(text, "t.ttl")
    labels = sorted(set(re.findall(r"_:b[0-9a-f]{8}_\d", out)))
    assert len(labels) == 2 and labels[0].endswith("_1") and labels[1].endswith("_2")
    assert_lossless(text, out)
    assert fmt.format_turtle(out, "t.ttl") == out


def test_cycles_of_single_use_blank_nodes_are_cut_deterministically() -> None:
    text = PREFIXES + "_:a ex:next _:b ; ex:n 1 .\n_:b ex:next _:c ; ex:n 2 .\n_:c ex:next _:a ; ex:n 3 .\n"
    rotated = PREFIXES + "_:c ex:next _:a ; ex:n 3 .\n_:a ex:next _:b ; ex:n 1 .\n_:b ex:next _:c ; ex:n 2 .\n"
    out = fmt.format_turtle(text, "t.ttl")
    assert out == fmt.format_turtle(rotated, "t.ttl")
    assert len(set(re.findall(r"_:b[0-9a-f]{8}", out))) == 1
    assert out.count("[") == 2
    assert_lossless(text, out)
    assert fmt.format_turtle(out, "t.ttl") == out
    selfloop = PREFIXES + "_:a ex:self _:a .\n"
    out = fmt.format_turtle(selfloop, "t.ttl")
    assert_lossless(selfloop, out)


def test_deep_nesting_is_capped() -> None:
    depth = 100
    text = PREFIXES + "ex:s ex:p " + "[ ex:p " * depth + "1" + " ]" * depth + " .\n"
    out = fmt.format_turtle(text, "t.ttl")
    assert_lossless(text, out)
    assert fmt.format_turtle(out, "t.ttl") == out
    assert max(len(line) - len(line.lstrip()) for line in out.split("\n")) <= 4 * (fmt.MAX_INLINE_DEPTH + 2)


def test_long_collection_does_not_recurse() -> None:
    text = PREFIXES + "ex:s ex:p ( " + " ".join(str(i) for i in range(5000)) + " ) .\n"
    out = fmt.format_turtle(text, "t.ttl")
    assert "\n        4999\n    ) .\n" in out
    assert_lossless(text, out)


def test_unreferenced_blank_node_subjects_are_anonymous_blocks_after_the_iris() -> None:
    out = body('[] ex:p "b" .\n[ ex:p "a" ] .\nex:z ex:p 1 .\n')
    assert out == 'ex:z\n    ex:p 1 .\n\n[]\n    ex:p "a" .\n\n[]\n    ex:p "b" .\n'


def test_rdf12_triple_terms() -> None:
    text = PREFIXES + "ex:s ex:p <<( ex:a ex:b \"c\"@en )>> .\n"
    out = fmt.format_turtle(text, "t.ttl")
    assert '<<( ex:a ex:b "c"@en )>>' in out
    assert {str(q) for q in ox.parse(text.encode(), format=ox.RdfFormat.TURTLE)} == {
        str(q) for q in ox.parse(out.encode(), format=ox.RdfFormat.TURTLE)
    }
    with pytest.raises(fmt.UnsupportedTurtle):
        fmt.format_turtle(PREFIXES + "ex:s ex:p <<( _:x ex:b ex:c )>> .\n", "t.ttl")


# --- comments --------------------------------------------------------------------------------------

def test_comments_follow_their_subjects() -> None:
    text = (
        "# file header\n# second line\n\n# header after a gap\n\n"
        + PREFIXES
        + "# a comment inside the prefix block\n"
        "@prefix owl: <http://www.w3.org/2002/07/owl#> .\n\n"
        "# about z\n# (two lines)\nex:z ex:p 1 ; # end of line inside\n    ex:q 2 . # after the dot\n\n"
        "# ---- section ----\n\nex:a ex:p \"# not a comment\" , <http://example.org/#frag> .\n"
        "# about b, part one\nex:b ex:p 1 .\n# about b, part two\nex:b ex:q 2 .\n"
        "[ ex:p 1 # inside an anonymous subject\n] .\n"
        "# the end\n"
    )
    out = fmt.format_turtle(text, "t.ttl")
    assert out.startswith("# file header\n# second line\n\n# header after a gap\n# a comment inside the prefix block\n\n@prefix")
    assert "\n\n# ---- section ----\nex:a\n" in out
    assert "\n\n# about b, part one\n# about b, part two\nex:b\n" in out
    assert "\n\n# about z\n# (two lines)\n# end of line inside\n# after the dot\nex:z\n" in out
    assert out.endswith("\n\n# inside an anonymous subject\n# the end\n")
    assert '"# not a comment"' in out
    assert fmt.format_turtle(out, "t.ttl") == out


def test_first_subject_comment_versus_header_without_prefixes() -> None:
    direct = "# about s\n<http://x/s> <http://x/p> 1 .\n"
    assert fmt.format_turtle(direct, "t.ttl") == "# about s\n<http://x/s>\n    <http://x/p> 1 .\n"
    gap = "# header\n\n<http://x/s> <http://x/p> 1 .\n"
    assert fmt.format_turtle(gap, "t.ttl") == "# header\n\n<http://x/s>\n    <http://x/p> 1 .\n"
    both = "# header\n\n# about t\n<http://x/t> <http://x/p> 1 .\n<http://x/s> <http://x/p> 1 .\n"
    out = fmt.format_turtle(both, "t.ttl")
    assert out == "# header\n\n<http://x/s>\n    <http://x/p> 1 .\n\n# about t\n<http://x/t>\n    <http://x/p> 1 .\n"
    assert fmt.format_turtle(out, "t.ttl") == out


def test_comments_find_subjects_written_as_relative_or_redeclared_names() -> None:
    text = (
        "@prefix ex: <http://old.example/> .\n# about old\nex:s <http://x/p> 1 .\n"
        "@prefix ex: <http://example.org/> .\n# about new\nex:s <http://x/p> 2 .\n"
        "# about relative\n<../rel> <http://x/p> 3 .\n"
        "@base <http://based.example/dir/> .\n# about based\n<x> <http://x/p> 4 .\n"
    )
    out = fmt.format_turtle(text, "t.ttl")
    assert "\n# about relative\n<../rel>\n" in out
    assert "\n# about based\n<http://based.example/dir/x>\n" in out
    assert "\n# about new\nex:s\n" in out
    assert "\n# about old\n<http://old.example/s>\n" in out
    assert fmt.format_turtle(out, "t.ttl") == out


def test_comments_of_inlined_blank_nodes_go_above_their_block() -> None:
    text = PREFIXES + "ex:s ex:p _:n .\n# about the node\n_:n ex:q 1 .\n"
    out = fmt.format_turtle(text, "t.ttl")
    assert out.endswith("# about the node\nex:s\n    ex:p [\n        ex:q 1\n    ] .\n")


def test_comment_only_and_prefix_only_files() -> None:
    assert fmt.format_turtle("# only\n\n# comments\n", "t.ttl") == "# only\n\n# comments\n"
    out = fmt.format_turtle("@prefix ex: <http://example.org/> .\n# trailing\n", "t.ttl")
    assert out == "@prefix ex: <http://example.org/> .\n\n# trailing\n"
    assert fmt.format_turtle(out, "t.ttl") == out


def test_crlf_and_syntax_errors() -> None:
    out = fmt.format_turtle("# h\r\n@prefix ex: <http://example.org/> .\r\nex:s ex:p \"a\" .\r\n", "t.ttl")
    assert out == "# h\n\n@prefix ex: <http://example.org/> .\n\nex:s\n    ex:p \"a\" .\n"
    with pytest.raises(fmt.TurtleSyntaxError) as info:
        fmt.format_turtle("@prefix ex: <http://example.org/> .\nex:s ex:p .\n", "bad.ttl")
    assert re.fullmatch(r"bad\.ttl:2:\d+: error: .+", str(info.value.problem))


# --- every Turtle file of the project --------------------------------------------------------------

PROJECT_FILES = open_project(REPO).all_turtle_files()


@pytest.mark.parametrize(
    "path", PROJECT_FILES or [None], ids=[p.relative_to(REPO).as_posix() for p in PROJECT_FILES] or ["no-files-yet"]
)
def test_project_turtle_formats_losslessly_and_idempotently(path: Path | None) -> None:
    if path is None:
        assert not open_project(REPO).all_turtle_files()
        return
    text = path.read_text(encoding="utf-8")
    out = fmt.format_turtle(text, path.name)
    assert_lossless(text, out)
    assert fmt.format_turtle(out, path.name) == out


# --- the command -----------------------------------------------------------------------------------

def test_check_reports_drift_and_changes_nothing(tmp_path: Path) -> None:
    messy = (DATA / "messy.ttl").read_text(encoding="utf-8")
    expected = (DATA / "messy.expected.ttl").read_text(encoding="utf-8")
    root = tmp_project(tmp_path, {"data/messy.ttl": messy, "ontology/ok.ttl": expected})
    result = run_cli("--root", str(root), "fmt", "--check")
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == ["would reformat data/messy.ttl", "1 file would be reformatted, 1 unchanged"]
    assert (root / "data/messy.ttl").read_text(encoding="utf-8") == messy

    (root / "data/messy.ttl").write_text(expected, encoding="utf-8")
    result = run_cli("--root", str(root), "fmt", "--check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == ["0 files would be reformatted, 2 unchanged"]


def test_fmt_rewrites_atomically_keeping_the_file_mode(tmp_path: Path) -> None:
    messy = (DATA / "messy.ttl").read_text(encoding="utf-8")
    expected = (DATA / "messy.expected.ttl").read_text(encoding="utf-8")
    root = tmp_project(tmp_path, {"data/messy.ttl": messy, "shapes/s.ttl": messy, "ontology/ok.ttl": expected})
    os.chmod(root / "data/messy.ttl", 0o640)
    inode = (root / "data/messy.ttl").stat().st_ino
    result = run_cli("--root", str(root), "fmt")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == ["reformatted data/messy.ttl", "reformatted shapes/s.ttl", "2 files reformatted, 1 unchanged"]
    assert (root / "data/messy.ttl").read_text(encoding="utf-8") == expected
    assert (root / "shapes/s.ttl").read_text(encoding="utf-8") == expected
    assert stat.S_IMODE((root / "data/messy.ttl").stat().st_mode) == 0o640
    assert (root / "data/messy.ttl").stat().st_ino != inode  # replaced, not rewritten in place
    assert sorted(p.name for p in (root / "data").iterdir()) == ["messy.ttl"]  # no temporary left behind
    result = run_cli("--root", str(root), "fmt")
    assert result.returncode == 0
    assert result.stdout.splitlines() == ["0 files reformatted, 3 unchanged"]


def test_syntax_errors_are_reported_and_the_file_is_left_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = "@prefix ex: <http://example.org/> .\n\nex:s ex:p \"unterminated .\nex:t ex:p 1 .\n"
    messy = (DATA / "messy.ttl").read_text(encoding="utf-8")
    root = tmp_project(tmp_path, {"data/bad.ttl": bad, "data/messy.ttl": messy, "data/empty.ttl": "\n"})
    before = (root / "data/bad.ttl").read_bytes()
    code = main(["--root", str(root), "fmt"])
    out = capsys.readouterr().out
    assert code == 1
    assert re.search(r"^data/bad\.ttl:3:\d+: error: \S.*$", out, re.M), out
    assert re.search(r"^data/empty\.ttl:1:1: error: file is empty", out, re.M), out
    assert "reformatted data/messy.ttl" in out  # the other files are still formatted
    assert out.rstrip().endswith("1 file reformatted, 0 unchanged, 2 with syntax errors")
    assert (root / "data/bad.ttl").read_bytes() == before
    code = main(["--root", str(root), "fmt", "--check", str(root / "data/bad.ttl")])
    assert code == 1
    assert (root / "data/bad.ttl").read_bytes() == before


def test_paths_select_files_and_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    messy = (DATA / "messy.ttl").read_text(encoding="utf-8")
    root = tmp_project(tmp_path, {"data/a.ttl": messy, "data/sub/b.ttl": messy, "data/.hidden/c.ttl": messy, "shapes/d.ttl": messy})
    assert main(["--root", str(root), "fmt", "--check", str(root / "data")]) == 1
    out = capsys.readouterr().out
    assert out.splitlines() == ["would reformat data/a.ttl", "would reformat data/sub/b.ttl", "2 files would be reformatted, 0 unchanged"]
    assert main(["--root", str(root), "fmt", str(root / "shapes/d.ttl")]) == 0
    assert capsys.readouterr().out.splitlines() == ["reformatted shapes/d.ttl", "1 file reformatted, 0 unchanged"]
    assert main(["--root", str(root), "fmt", str(root / "nowhere.ttl")]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_a_failed_write_leaves_the_file_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    messy = (DATA / "messy.ttl").read_text(encoding="utf-8")
    root = tmp_project(tmp_path, {"data/messy.ttl": messy})

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fmt.os, "replace", broken_replace)
    assert main(["--root", str(root), "fmt"]) == 2
    assert (root / "data/messy.ttl").read_text(encoding="utf-8") == messy
    assert sorted(p.name for p in (root / "data").iterdir()) == ["messy.ttl"]


def test_output_that_is_not_the_same_graph_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    messy = (DATA / "messy.ttl").read_text(encoding="utf-8")
    root = tmp_project(tmp_path, {"data/messy.ttl": messy})
    real = fmt._format

    def lossy(text: str, name: str):
        out, lines = real(text, name)
        return out.replace('"EM DCS group"@en ;', '"EM DCS grump"@en ;'), lines

    monkeypatch.setattr(fmt, "_format", lossy)
    for args in (["fmt"], ["fmt", "--check"]):
        assert main(["--root", str(root), *args]) == 2
        captured = capsys.readouterr()
        assert "internal error: data/messy.ttl" in captured.err
    assert (root / "data/messy.ttl").read_text(encoding="utf-8") == messy


def test_blank_node_isomorphism_check() -> None:
    a = ["_:x <http://x/p> _:y .", "_:y <http://x/p> _:x .", "<http://x/s> <http://x/q> _:x ."]
    b = ["_:m <http://x/p> _:n .", "_:n <http://x/p> _:m .", "<http://x/s> <http://x/q> _:n ."]
    c = ["_:m <http://x/p> _:n .", "_:n <http://x/p> _:n .", "<http://x/s> <http://x/q> _:n ."]
    assert fmt.same_graph(a, b)
    assert not fmt.same_graph(a, c)
    # not told apart by colour refinement: two triangles versus one hexagon
    tri = [f"_:{x} <http://x/p> _:{y} ." for x, y in ["ab", "bc", "ca", "de", "ef", "fd"]]
    tri += [f"_:{y} <http://x/p> _:{x} ." for x, y in ["ab", "bc", "ca", "de", "ef", "fd"]]
    hexa = [f"_:{x} <http://x/p> _:{y} ." for x, y in ["ab", "bc", "cd", "de", "ef", "fa"]]
    hexa += [f"_:{y} <http://x/p> _:{x} ." for x, y in ["ab", "bc", "cd", "de", "ef", "fa"]]
    assert fmt.same_graph(tri, list(reversed(tri)))
    assert not fmt.same_graph(tri, hexa)


# --- property: random graphs -----------------------------------------------------------------------

NASTY = ['"', '\\', "\n", "\r", "\t", '"""', "'''", '""', "<p>", "</p>", "&amp;", "#", "@en", "^^", ".", ";", ",", "\u2028", "\x00", "🎉", "é"]
texts = st.lists(st.one_of(st.characters(exclude_categories=("Cs",)), st.sampled_from(NASTY)), max_size=12).map("".join)
NS = "http://example.org/"
iris = st.sampled_from(["a", "b", "c", "2016-05", "x.y", "trailing.", "sl/ash", "p(1)", "é"]).map(lambda s: ox.NamedNode(NS + s))
predicates = st.sampled_from(["p", "q", "label", "r"]).map(lambda s: ox.NamedNode(NS + s)) | st.just(
    ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
)
XSD = "http://www.w3.org/2001/XMLSchema#"
literals = st.one_of(
    texts.map(ox.Literal),
    st.builds(lambda t, lang: ox.Literal(t, language=lang), texts, st.sampled_from(["en", "en-gb", "cy", "zh-hant-tw"])),
    st.from_regex(r"[+-]?[0-9]{1,3}", fullmatch=True).map(lambda v: ox.Literal(v, datatype=ox.NamedNode(XSD + "integer"))),
    st.from_regex(r"[+-]?[0-9]{0,2}\.[0-9]{1,2}", fullmatch=True).map(lambda v: ox.Literal(v, datatype=ox.NamedNode(XSD + "decimal"))),
    st.sampled_from(["true", "false", "1", "0"]).map(lambda v: ox.Literal(v, datatype=ox.NamedNode(XSD + "boolean"))),
    st.builds(lambda t: ox.Literal(t, datatype=ox.NamedNode(NS + "dt")), texts),
)
bnodes = st.sampled_from(["b1", "b2", "b3", "b4"]).map(ox.BlankNode)
triples = st.builds(ox.Triple, iris | bnodes, predicates, st.one_of(iris, bnodes, literals))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(triples, max_size=25), st.booleans())
def test_random_graphs_round_trip_and_are_idempotent(graph: list[ox.Triple], with_list: bool) -> None:
    if with_list:
        graph = list(graph) + [
            ox.Triple(ox.NamedNode(NS + "a"), ox.NamedNode(NS + "list"), ox.BlankNode("l1")),
            ox.Triple(ox.BlankNode("l1"), ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#first"), ox.Literal("one\n\"")),
            ox.Triple(ox.BlankNode("l1"), ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#rest"), ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#nil")),
        ]
    text = ox.serialize(graph, format=ox.RdfFormat.TURTLE, prefixes={"ex": NS, "xsd": XSD}).decode("utf-8")
    out = fmt.format_turtle(text, "random.ttl")
    assert_lossless(text, out)
    assert fmt.format_turtle(out, "random.ttl") == out
    assert (out == "" == text) or out.endswith("\n")
    assert "\r" not in out


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(triples, min_size=1, max_size=25), st.randoms(use_true_random=False))
def test_output_does_not_depend_on_statement_order_or_blank_node_names(graph: list[ox.Triple], rnd: random.Random) -> None:
    header = f"@prefix ex: <{NS}> .\n@prefix xsd: <{XSD}> .\n"
    lines = [f"{t} ." for t in graph]
    renamed = [re.sub(r"_:(b\d)\b", r"_:renamed\1", line) for line in lines]
    rnd.shuffle(renamed)
    out = fmt.format_turtle(header + "\n".join(lines) + "\n", "a.ttl")
    assert fmt.format_turtle(header + "\n".join(renamed) + "\n", "b.ttl") == out
    assert_lossless(header + "\n".join(lines), out)


comment_texts = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\n\r"), max_size=20)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(min_value=0), st.booleans(), comment_texts), max_size=12))
def test_comments_anywhere_are_kept_and_harmless(inserts: list[tuple[int, bool, str]]) -> None:
    """Comments put at random line ends (never inside a long string) all survive, and change nothing else."""
    expected = (DATA / "messy.expected.ttl").read_text(encoding="utf-8")
    long_strings = [m.span() for m in re.finditer(r'"""(?:[^"\\]|\\.|"{1,2}(?!"))*"""', expected, re.S)]
    ends = [i for i, c in enumerate(expected) if c == "\n" and not any(a < i < b for a, b in long_strings)]
    chosen: dict[int, tuple[str, bool]] = {}  # one comment per line end
    for n, (where, own_line, words) in enumerate(inserts):
        chosen.setdefault(ends[where % len(ends)], (f"# note {n}: {words}".rstrip(), own_line))
    wanted = [comment for comment, _ in chosen.values()]
    text = expected
    for pos in sorted(chosen, reverse=True):  # from the end, so that earlier positions stay valid
        comment, own_line = chosen[pos]
        line_start = text.rfind("\n", 0, pos) + 1
        own_line = own_line or text[line_start:pos].lstrip().startswith("#")  # not glued to a comment
        text = text[:pos] + ("\n" if own_line else "  ") + comment + text[pos:]
    out = fmt.format_turtle(text, "commented.ttl")
    assert canonical(out) == canonical(expected)
    lines = out.split("\n")
    for comment in wanted:
        assert comment in lines
    assert fmt.format_turtle(out, "commented.ttl") == out
