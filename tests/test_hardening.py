"""Hardening: every bad input gets one clear answer, nothing is injected, text survives the pipeline.

Bad Turtle and bad data go through ``emkg validate PATH`` as a data officer would run it: one line
naming the file and line, the documented exit code, no traceback. Random text (hypothesis) goes
through Turtle → validate → build and must come out unchanged in every dump and escaped on pages.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyoxigraph as ox
import pytest
import rdflib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import escape

from emkg.cli import main

ROOT = Path(__file__).resolve().parents[1]
PREFIXES = """@prefix authority: <https://w3id.org/emkg/id/authority/> .
@prefix dcterms: <http://purl.org/dc/terms/> .
@prefix emkg: <https://w3id.org/emkg/def/> .
@prefix skos: <http://www.w3.org/2004/02/skos/core#> .
@prefix update: <https://w3id.org/emkg/id/update/> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
"""
RUTLAND = "https://w3id.org/emkg/id/authority/rutland-county-council"


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert "internal error" not in err, err
    return code, out, err


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the real project, so tests can add files without touching the sources."""
    root = tmp_path_factory.mktemp("hardening") / "project"
    for name in ("ontology", "data", "shapes", "queries"):
        shutil.copytree(ROOT / name, root / name)
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


BAD_TURTLE = [
    ("unterminated-string", PREFIXES + 'authority:rutland-county-council skos:editorialNote "open .\n', 7, "end of file"),
    ("missing-dot", PREFIXES + "authority:rutland-county-council skos:editorialNote \"a\"@en\nauthority:x skos:note \"b\" .\n", 8, ""),
    ("missing-semicolon", PREFIXES + 'authority:rutland-county-council skos:editorialNote "a"@en\n    skos:note "b"@en .\n', 8, ""),
    ("bad-escape", PREFIXES + 'authority:rutland-county-council skos:editorialNote "a \\z"@en .\n', 7, "escape"),
    ("undeclared-prefix", PREFIXES + "authority:rutland-county-council nope:note \"a\"@en .\n", 7, "nope"),
    ("invalid-iri", PREFIXES + "authority:rutland-county-council skos:related <https://exa mple.org/> .\n", 7, ""),
    ("not-turtle", "<html><body>This is a web page</body></html>\n", 1, ""),
]


@pytest.mark.parametrize(("name", "content", "line", "words"), BAD_TURTLE, ids=[c[0] for c in BAD_TURTLE])
def test_bad_turtle_is_one_line_with_file_and_line(project: Path, tmp_path: Path, capsys, name, content, line, words) -> None:
    path = tmp_path / f"{name}.ttl"
    path.write_text(content, encoding="utf-8")
    code, out, _err = _run(capsys, "--root", str(project), "validate", str(path))
    assert code == 1
    errors = [l for l in out.splitlines() if ": error: " in l]
    assert len(errors) == 1, out
    assert errors[0].startswith(f"{path}:{line}:") or errors[0].startswith(f"{path.resolve()}:{line}:"), errors[0]
    assert words in errors[0].lower()


@pytest.mark.parametrize(
    ("name", "raw", "words"),
    [
        ("latin1", PREFIXES.encode() + 'authority:rutland-county-council skos:editorialNote "caf\xe9"@en .\n'.encode("latin-1"), "utf-8"),
        ("bom", b"\xef\xbb\xbf" + PREFIXES.encode(), "byte-order mark"),
        ("empty", b"", "empty"),
        ("nul", PREFIXES.encode() + b"\x00\x00", "nul"),
    ],
)
def test_unreadable_bytes_are_one_line(project: Path, tmp_path: Path, capsys, name: str, raw: bytes, words: str) -> None:
    path = tmp_path / f"{name}.ttl"
    path.write_bytes(raw)
    code, out, _err = _run(capsys, "--root", str(project), "validate", str(path))
    assert code == 1
    [error] = [l for l in out.splitlines() if ": error: " in l]
    assert f"{name}.ttl:" in error and words in error.lower()


def test_a_folder_named_ttl_inside_data_is_reported(project: Path, capsys) -> None:
    folder = project / "data" / "looks-like-a-file.ttl"
    folder.mkdir()
    (folder / "inner.ttl").write_text(PREFIXES, encoding="utf-8")
    try:
        code, out, _err = _run(capsys, "--root", str(project), "validate")
    finally:
        shutil.rmtree(folder)
    assert code == 1
    assert "data/looks-like-a-file.ttl:1:1: error: is a directory" in out


def _write(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(PREFIXES + body, encoding="utf-8")
    return path


def test_ill_typed_date_is_a_violation_at_its_line(project: Path, tmp_path: Path, capsys) -> None:
    path = _write(tmp_path, "date.ttl", '\nupdate:2019-09 dcterms:date "2019-13-45"^^xsd:date .\n')
    code, out, _err = _run(capsys, "--root", str(project), "validate", str(path))
    assert code == 1
    lines = [l for l in out.splitlines() if "date.ttl:8:" in l]
    assert lines and "violation" in lines[0], out
    assert "2019-13-45" in lines[0]


def test_conflicting_values_in_two_files_point_at_the_new_file(project: Path, tmp_path: Path, capsys) -> None:
    path = _write(tmp_path, "conflict.ttl", '\nauthority:rutland-county-council emkg:gssCode "E06000099" .\n')
    code, out, _err = _run(capsys, "--root", str(project), "validate", str(path))
    assert code == 1
    hits = [l for l in out.splitlines() if "rutland-county-council" in l and "violation" in l]
    assert hits, out
    assert any("conflict.ttl:8:" in l or "data/authorities.ttl:" in l for l in hits), hits


def test_unknown_option_missing_folder_and_bad_out(project: Path, tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["validate", "--no-such-option"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --no-such-option" in capsys.readouterr().err
    code, _out, err = _run(capsys, "--root", str(tmp_path / "missing"), "validate")
    assert code == 2 and "no such project folder" in err
    code, _out, err = _run(capsys, "--root", str(project), "validate", str(tmp_path / "nowhere.ttl"))
    assert code == 2 and "nowhere.ttl: no such file or folder" in err
    a_file = tmp_path / "out-is-a-file"
    a_file.write_text("keep me", encoding="utf-8")
    code, _out, err = _run(capsys, "--root", str(project), "build", "--out", str(a_file))
    assert code == 2 and str(a_file) in err
    assert a_file.read_text(encoding="utf-8") == "keep me"


# --- text through the whole pipeline ---------------------------------------------------------------

TEXT = st.lists(
    st.one_of(
        st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"), max_size=12),
        st.sampled_from(['"', "'", "\\", "<", ">", "&", "</script>", "<script>alert(1)</script>", '"""', "\n", "\t",
                         "{{ x }}", "{% x %}", "javascript:alert(1)", "]]>", "<!--"]),
    ),
    min_size=1, max_size=6,
).map("".join).map(str.strip).filter(bool)


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(texts=st.lists(TEXT, min_size=3, max_size=6, unique=True))
def test_any_text_survives_turtle_validate_build_and_is_escaped(project: Path, tmp_path_factory, capsys, texts: list[str]) -> None:
    tmp = tmp_path_factory.mktemp("text")
    extra = project / "data" / "zz-hypothesis.ttl"
    subject = f"<{RUTLAND}>"
    body = "".join(f"{subject} skos:editorialNote {ox.Literal(t, language='en')} .\n" for t in texts)
    body += f"{subject} skos:related <javascript:alert(1)> .\n"
    extra.write_text(PREFIXES + body, encoding="utf-8")
    out_dir = tmp / "public"
    try:
        code, out, err = _run(capsys, "--root", str(project), "fmt", str(extra))
        assert code == 0, out + err
        code, out, err = _run(capsys, "--root", str(project), "build", "--out", str(out_dir))
        assert code == 0, out + err
    finally:
        extra.unlink()

    expected = {rdflib.Literal(t, lang="en") for t in texts}
    for name, fmt in (("emkg.ttl", "turtle"), ("emkg.nt", "nt"), ("emkg.jsonld", "json-ld")):
        graph = rdflib.Graph().parse(out_dir / name, format=fmt)
        notes = set(graph.objects(rdflib.URIRef(RUTLAND), rdflib.SKOS.editorialNote))
        assert expected <= notes, f"{name} lost or changed text: {expected - notes}"
    page = (out_dir / "id" / "authority" / "rutland-county-council" / "index.html").read_text(encoding="utf-8")
    for t in texts:
        assert str(escape(t)) in page, f"not shown escaped: {t!r}"
    assert 'href="javascript:' not in page.lower()
    assert "<script>alert(1)</script>" not in page
    page_ld = json.loads((out_dir / "id" / "authority" / "rutland-county-council" / "index.jsonld").read_text(encoding="utf-8"))
    assert set(texts) <= _jsonld_strings(page_ld)


def _jsonld_strings(node) -> set[str]:
    if isinstance(node, str):
        return {node}
    if isinstance(node, dict):
        return set().union(*(_jsonld_strings(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(_jsonld_strings(v) for v in node)) if node else set()
    return set()


def test_endpoint_credentials_never_reach_the_output(project: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("EMKG_ENDPOINT", "https://zq-user-7:s3cret-pw@sparql.example.gov.uk:8443/emkg/query")
    out_dir = tmp_path / "public"
    code, out, err = _run(capsys, "--root", str(project), "build", "--out", str(out_dir), "--no-site")
    assert code == 0, out + err
    assert "s3cret-pw" not in out + err
    for path in out_dir.rglob("*"):
        if path.is_file():
            assert b"s3cret-pw" not in path.read_bytes(), path
            assert b"zq-user-7" not in path.read_bytes(), path
    void = rdflib.Graph().parse(out_dir / "void.ttl")
    endpoints = {str(o) for o in void.objects(None, rdflib.URIRef("http://rdfs.org/ns/void#sparqlEndpoint"))}
    assert endpoints == {"https://sparql.example.gov.uk:8443/emkg/query"}


def test_an_iri_that_cannot_be_a_file_name_is_reported_and_kept_inside_the_output(project: Path, tmp_path: Path, capsys) -> None:
    path = _write(tmp_path, "odd.ttl", '\n<https://w3id.org/emkg/id/authority/a:b*c> skos:related <https://w3id.org/emkg/id/authority/rutland-county-council> .\n')
    code, out, _err = _run(capsys, "--root", str(project), "validate", str(path))
    assert code == 1
    assert any(l.startswith(f"{path}:8:") and "a:b*c" in l for l in out.splitlines()), out
