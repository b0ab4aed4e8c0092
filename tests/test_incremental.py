"""Incremental builds (``incremental.py``): after an edit, the output is byte for byte what a full
build gives, while only the pages the edit can touch are rendered."""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from edits import first_update, sub

SIZE = 2500


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _last_numbers(caplog: pytest.LogCaptureFixture, pattern: str, stop: str | None = None) -> tuple[int, int] | None:
    """The two numbers of the last log message matching ``pattern`` (None if none, or if a
    message containing ``stop`` came after it)."""
    for record in reversed(caplog.records):
        match = re.search(pattern, record.getMessage())
        if match:
            return int(match.group(1)), int(match.group(2))
        if stop is not None and stop in record.getMessage():
            return None
    return None


def _rendered(caplog: pytest.LogCaptureFixture) -> tuple[int, int] | None:
    return _last_numbers(caplog, r"incremental: (\d+) of (\d+) resource pages", stop="site: every page")


def _pages_reused(caplog: pytest.LogCaptureFixture) -> tuple[int, int] | None:
    return _last_numbers(caplog, r"site: (\d+) of (\d+) listing, view and other pages reused")


def _snapshot(root: Path, into: Path) -> dict[str, bytes]:
    """Hard-link every file of ``root`` into ``into``; their bytes. A build that wrote through a
    link into the previous output would change the snapshot too."""
    for path in root.rglob("*"):
        if path.is_file():
            target = into / path.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.hardlink_to(path)
    return _files(into)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory, request) -> Path:
    from emkg.project import open_project
    from emkg.synth import generate_tree

    root = tmp_path_factory.mktemp("incremental") / "tree"
    generate_tree(open_project(Path(request.config.rootpath)), root, SIZE, seed=11)
    return root


def _drop_first_mention(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    changed = re.sub(r"(schema:mentions\n        )[^\s]+ ,\n        ", r"\1", text, count=1)
    assert changed != text
    path.write_text(changed, encoding="utf-8")


def _move_first_post(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    match = re.search(r"org:postIn authority:synthetic-authority-(\d+)", text)
    assert match
    other = "0001" if match.group(1) != "0001" else "0002"
    path.write_text(text[:match.start(1)] + other + text[match.end(1):], encoding="utf-8")


EDITS: dict[str, Callable[[Path], None]] = {
    # a section's text (the section page and its update page)
    "section text": lambda r: sub(first_update(r), 'schema:text "', 'schema:text "Edited by the test. '),
    # an authority's name: every page that links to it shows it
    "authority label": lambda r: sub(r / "data" / "authorities.ttl", '"Synthetic Authority 0002"@en',
                                      '"Synthetic Authority 0002 (renamed)"@en', count=2),
    # a mention removed: the entity's incoming links and involvement change
    "mention removed": lambda r: _drop_first_mention(first_update(r)),
    # a post moves to another organisation: involvement through posts
    "post moved": lambda r: _move_first_post(r / "data" / "people.ttl"),
    # an update's title: shown beside each of its sections wherever they are listed
    "update title": lambda r: sub(first_update(r), '"Synthetic National Update', '"Synthetic Quarterly Update', count=2),
    # a source document's name: shown in the provenance of everything derived from its sections
    "document label": lambda r: sub(first_update(r), 'rdfs:label "Seed synthetic-update-', 'rdfs:label "Seed (renamed) synthetic-update-'),
    # lines shift: every page of the file shows where it is recorded
    "lines shift": lambda r: sub(r / "data" / "events.ttl", "\n\n", "\n\n# a comment the test adds\n\n"),
    # a new resource, linked from an existing one
    "resource added": lambda r: (
        (r / "data" / "extra.ttl").write_text(
            "@prefix person: <https://w3id.org/emkg/id/person/> .\n"
            "@prefix post: <https://w3id.org/emkg/id/post/> .\n"
            "@prefix foaf: <http://xmlns.com/foaf/0.1/> .\n@prefix org: <http://www.w3.org/ns/org#> .\n"
            "@prefix prov: <http://www.w3.org/ns/prov#> .\n@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n"
            "@prefix source: <https://w3id.org/emkg/source/> .\n\n"
            "person:synthetic-newcomer\n    a foaf:Person ;\n    foaf:name \"Synthetic Newcomer\" ;\n"
            "    org:holds post:synthetic-post-00001 ;\n    prov:wasDerivedFrom source:synthetic-directory-people ;\n"
            "    rdfs:label \"Synthetic Newcomer\"@en .\n", encoding="utf-8")),
    # the new resource removed again
    "resource removed": lambda r: (r / "data" / "extra.ttl").unlink(),
}


# which groups of pages (``site.page_groups``) an edit leaves as they were, not even made
GROUPS_KEPT = {
    "section text": {"listings", "views"},  # no listing shows a section's text, no view reads it
    "authority label": set(),  # the authorities listing shows it; views read it
    "lines shift": {"listings", "views"},  # listings show no FILE:LINE
}


def test_incremental_build_equals_full_build(tree: Path, tmp_path: Path, run_emkg, caplog, monkeypatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    caplog.set_level(logging.INFO, logger="emkg.incremental")
    caplog.set_level(logging.INFO, logger="emkg.site")
    out = tmp_path / "out"
    code, _out, err = run_emkg("build", "--out", out, root=tree)
    assert code == 0, err
    assert _rendered(caplog) is None  # the first build renders everything
    code, _out, err = run_emkg("build", "--out", out, root=tree)
    assert code == 0, err
    assert _rendered(caplog)[0] == 0  # nothing changed: nothing rendered
    reused, total = _pages_reused(caplog)
    assert reused == total > 0  # nor any listing, view or other page
    some_listing_rendered = False
    for name, edit in EDITS.items():
        edit(tree)
        caplog.clear()
        snapshot = tmp_path / "snapshot"
        before = _snapshot(out, snapshot)
        code, _out, err = run_emkg("build", "--out", out, root=tree)
        assert code == 0, f"{name}: {err}"
        assert _files(snapshot) == before, f"{name}: the build wrote into the previous output"
        shutil.rmtree(snapshot)
        reused, total = _pages_reused(caplog)
        assert reused > 0, f"{name}: no listing, view or other page reused"
        kept_groups = {g for g in ("listings", "views") if any(f"the {g} pages are the last build's" in r.getMessage()
                                                                for r in caplog.records)}
        if name in GROUPS_KEPT:
            assert kept_groups == GROUPS_KEPT[name], f"{name}: page groups kept {kept_groups}"
        some_listing_rendered |= reused < total
        rendered = _rendered(caplog)
        assert rendered is not None, f"{name}: the build was not incremental"
        done, total = rendered
        assert 0 < done < total, f"{name}: {done} of {total} pages rendered"
        full = tmp_path / f"full-{len(list(tmp_path.iterdir()))}"
        code, _out, err = run_emkg("build", "--full", "--out", full, root=tree)
        assert code == 0, err
        ours, theirs = _files(out), _files(full)
        assert ours.keys() == theirs.keys(), f"{name}: different files"
        differ = sorted(k for k in ours if ours[k] != theirs[k])
        assert not differ, f"{name}: the incremental build differs from a full one in {differ[:5]}"
        shutil.rmtree(full)
    assert some_listing_rendered, "no edit changed a listing page"


def test_global_changes_render_everything(tree: Path, tmp_path: Path, run_emkg, caplog, monkeypatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    caplog.set_level(logging.INFO, logger="emkg.incremental")
    out = tmp_path / "out"
    assert run_emkg("build", "--out", out, root=tree)[0] == 0
    glossary = tree / "data" / "glossary.ttl"
    sub(glossary, '"synthetic term number 1"@en', '"synthetic term number one"@en')
    caplog.clear()
    assert run_emkg("build", "--out", out, root=tree)[0] == 0
    assert _rendered(caplog) is None  # the glossary marks up every section's text
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700086400")
    caplog.clear()
    assert run_emkg("build", "--out", out, root=tree)[0] == 0
    assert _rendered(caplog) is None  # the date is on every page
    full = tmp_path / "full"
    assert run_emkg("build", "--full", "--out", full, root=tree)[0] == 0
    assert _files(out) == _files(full)  # views whose rows were kept are written into the new folder too
    shutil.rmtree(full)
    events = tree / "data" / "events.ttl"
    original = events.read_text(encoding="utf-8")
    website = re.search(r"<(https://[^>]+\.example\.org/)>", "".join(
        p.read_text(encoding="utf-8") for p in sorted((tree / "data").glob("*.ttl"))))
    assert website, "the generated tree names a website"
    events.write_text(f"@prefix synthweb: <{website.group(1)}> .\n" + original, encoding="utf-8")
    try:
        caplog.clear()
        assert run_emkg("build", "--out", out, root=tree)[0] == 0
        assert _rendered(caplog) is None  # a prefix changes no triple, yet every resource's Turtle may use it
        assert run_emkg("build", "--full", "--out", full, root=tree)[0] == 0
        assert _files(out) == _files(full)
    finally:
        events.write_text(original, encoding="utf-8")
    caplog.clear()
    assert run_emkg("build", "--full", "--out", out, root=tree)[0] == 0
    assert _rendered(caplog) is None


def test_a_replaced_output_folder_is_rebuilt_in_full(tree: Path, tmp_path: Path, run_emkg, caplog, monkeypatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    caplog.set_level(logging.INFO, logger="emkg.incremental")
    out = tmp_path / "out"
    assert run_emkg("build", "--out", out, root=tree)[0] == 0
    shutil.copytree(out, tmp_path / "copy")
    shutil.rmtree(out)
    (tmp_path / "copy").rename(out)  # same content, but not the folder the cache describes
    caplog.clear()
    assert run_emkg("build", "--out", out, root=tree)[0] == 0
    assert _rendered(caplog) is None


def _views_reused(caplog: pytest.LogCaptureFixture) -> tuple[int, int] | None:
    return _last_numbers(caplog, r"views: (\d+) of (\d+) reused")


def test_views_are_reused_only_when_none_of_their_predicates_changed(tree: Path, tmp_path: Path, run_emkg, caplog, monkeypatch) -> None:
    """A section's text is read by no view: every view's rows are reused. An authority's name is
    read by several: those run again (and the output still equals a full build, checked above)."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    caplog.set_level(logging.INFO, logger="emkg")
    out = tmp_path / "out"
    assert run_emkg("build", "--out", out, root=tree)[0] == 0
    assert _views_reused(caplog) is None, "the first build has nothing to reuse"
    caplog.clear()
    EDITS["section text"](tree)
    assert run_emkg("build", "--out", out, root=tree)[0] == 0
    reused, total = _views_reused(caplog)
    assert reused == total > 0
    caplog.clear()
    sub(tree / "data" / "authorities.ttl", '"Synthetic Authority 0003"@en', '"Synthetic Authority 0003 (renamed)"@en', count=2)
    assert run_emkg("build", "--out", out, root=tree)[0] == 0
    reused, total = _views_reused(caplog)
    assert 0 < reused < total
    views = sorted((out / "views").glob("*.csv"))
    assert any("Synthetic Authority 0003 (renamed)" in v.read_text(encoding="utf-8") for v in views)
    caplog.clear()
    assert run_emkg("build", "--full", "--out", out, root=tree)[0] == 0
    assert _views_reused(caplog) is None, "--full runs every view"


def test_view_rows_are_kept_as_plain_data(tmp_path: Path) -> None:
    """The build cache keeps a view's rows as plain data in a file; read back as the next build
    reads them (``KeptResult``), they are the same terms."""
    import pickle

    import pyoxigraph as ox

    from emkg.incremental import KeptResult, encode_result
    from emkg.views import Result

    xsd = "http://www.w3.org/2001/XMLSchema#"
    rows = [
        (ox.NamedNode("https://example.org/a"), ox.Literal("A", language="en"), None),
        (ox.BlankNode("b1"), ox.Literal("3", datatype=ox.NamedNode(xsd + "integer")), ox.Literal("plain")),
        (ox.NamedNode("https://example.org/a"), ox.Literal("2024-01-01", datatype=ox.NamedNode(xsd + "date")),
         ox.Literal("x", language="en-GB")),
    ]
    result = Result(["s", "label", "other"], rows)
    encoded = encode_result(result)
    assert encoded is not None
    variables, plain = encoded
    (tmp_path / "rows.pickle").write_bytes(pickle.dumps(plain, protocol=5))
    back = KeptResult(list(variables), tmp_path / "rows.pickle")
    assert back.variables == result.variables
    assert back.rows == result.rows
    assert [type(t) for row in back.rows for t in row] == [type(t) for row in rows for t in row]
    triple = ox.Triple(ox.NamedNode("https://example.org/a"), ox.NamedNode("https://example.org/p"), ox.Literal("o"))
    assert encode_result(Result(["t"], [(triple,)])) is None  # not kept: the view runs again next time


def test_a_page_missing_from_the_previous_output_is_rendered(tree: Path, tmp_path: Path, run_emkg, caplog, monkeypatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    caplog.set_level(logging.INFO, logger="emkg")
    out = tmp_path / "out"
    assert run_emkg("build", "--out", out, root=tree)[0] == 0
    page = sorted((out / "id").rglob("index.jsonld"))[0]
    whole = _files(out)
    page.unlink()
    caplog.clear()
    assert run_emkg("build", "--out", out, root=tree)[0] == 0
    assert _rendered(caplog)[0] == 0
    assert any("1 resource pages missing from the previous output" in r.getMessage() for r in caplog.records)
    assert _files(out) == whole


def test_a_violation_found_alongside_the_dumps_publishes_nothing(tree: Path, tmp_path: Path, run_emkg, caplog,
                                                                  monkeypatch) -> None:
    """After an edit the validation runs in a thread alongside the dumps and views; when it finds
    a violation the build stops with exit 1 and the report, and the previous output stays as it was."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    root = tmp_path / "tree"
    shutil.copytree(tree, root, ignore=shutil.ignore_patterns(".cache"))
    out = tmp_path / "out"
    code, _out, err = run_emkg("build", "--out", out, root=root)
    assert code == 0, err
    before = _files(out)
    sub(first_update(root), "dcterms:isPartOf ", "dcterms:isPartOf <https://w3id.org/emkg/id/update/nowhere> , ")
    code, report, err = run_emkg("build", "--out", out, root=root)
    assert "alongside the dumps and views" in err  # the validation ran in the background
    assert code == 1, err
    assert "the data does not conform: nothing was published" in err
    assert "violation" in report and "update:nowhere" in report
    assert _files(out) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.tmp-")], "the temporary folder is removed"


def test_the_output_is_updated_in_place(tree: Path, tmp_path: Path, run_emkg, caplog, monkeypatch) -> None:
    """An incremental build replaces only the files it wrote: every other file of the output is
    the same file as before (same inode), and the files of a stored view that is gone are removed."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    caplog.set_level(logging.INFO, logger="emkg")
    root = tmp_path / "tree"
    shutil.copytree(tree, root, ignore=shutil.ignore_patterns(".cache"))
    out = tmp_path / "out"
    assert run_emkg("build", "--out", out, root=root)[0] == 0
    inodes = {p.relative_to(out).as_posix(): p.stat().st_ino for p in out.rglob("*") if p.is_file()}
    view = sorted((root / "queries").glob("*.rq"))[0]
    view.unlink()
    sub(first_update(root), 'schema:text "', 'schema:text "Edited by the test. ')
    caplog.clear()
    code, _out, err = run_emkg("build", "--out", out, root=root)
    assert code == 0, err
    assert _rendered(caplog) is not None, "the build was not incremental"
    assert any("updated in place" in r.getMessage() for r in caplog.records)
    now = {p.relative_to(out).as_posix(): p.stat().st_ino for p in out.rglob("*") if p.is_file()}
    gone = {rel for rel in inodes if rel not in now}
    assert gone and all(rel.startswith(f"views/{view.stem}.") for rel in gone), sorted(gone)
    kept = [rel for rel in now if now[rel] == inodes.get(rel)]
    other_view = sorted((root / "queries").glob("*.rq"))[0].stem
    assert {f"views/{other_view}.csv", f"views/{other_view}.json", f"views/{other_view}.html"} <= set(kept), \
        "a view whose rows did not change keeps its files"
    replaced = [rel for rel in now if rel in inodes and now[rel] != inodes[rel]]
    assert len(kept) > 10 * len(replaced) > 0, (len(kept), len(replaced))
    full = tmp_path / "full"
    assert run_emkg("build", "--full", "--out", full, root=root)[0] == 0
    assert _files(out) == _files(full)


def test_the_model_records_what_page_building_reads(tmp_path: Path) -> None:
    """What a page is made from is recorded as it is read (``site.Reads``), including what a
    label remembered earlier was made from, so that the planner can tell which edits change it."""
    import pyoxigraph as ox

    from emkg.project import open_project
    from emkg.site import Model, SiteInput

    ex = "https://w3id.org/emkg/id/thing/"
    rdf_type, label = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type", "http://www.w3.org/2000/01/rdf-schema#label"
    store = ox.Store()
    store.add(ox.Quad(ox.NamedNode(ex + "a"), ox.NamedNode(rdf_type), ox.NamedNode(ex + "Kind")))
    store.add(ox.Quad(ox.NamedNode(ex + "a"), ox.NamedNode(label), ox.Literal("A", language="en")))
    store.add(ox.Quad(ox.NamedNode(ex + "b"), ox.NamedNode(ex + "near"), ox.NamedNode(ex + "a")))
    project = open_project(Path(__file__).resolve().parents[1])
    m = Model(SiteInput(project=project, store=store, prefixes={}))
    assert m.label(ex + "a") == "A"
    assert label in m.reads.predicates and not m.reads.subjects
    assert m.instances(ex + "Kind") == [ex + "a"]
    assert rdf_type in m.reads.predicates
    assert m.incoming(ex + "a") == [(ex + "b", ex + "near")]
    assert m.reads.objects == {ex + "a"}
    assert set(m.statements(ex + "b")) == {ex + "near"} and m.reads.subjects == {ex + "b"}
    assert m.has(ex + "b") and not m.has(ex + "c") and "subjects" in m.reads.flags
    assert m.page(ex + "a") == "id/thing/a/index.html"


def test_work_forked_into_a_child_process_reports_back() -> None:
    """The build's background validation (``forked.Forked``): the child's return value, or its
    exception (as its text, if it cannot be pickled), comes back to the parent."""
    import threading

    from emkg.errors import UsageError
    from emkg.forked import Forked

    assert Forked(lambda: {"rows": [1, 2, 3]}).result() == {"rows": [1, 2, 3]}

    def fails() -> None:
        raise UsageError("the shapes folder is missing")

    with pytest.raises(UsageError, match="the shapes folder is missing"):
        Forked(fails).result()

    def unpicklable() -> None:
        raise ValueError(threading.Lock())

    with pytest.raises(RuntimeError, match="ValueError"):
        Forked(unpicklable).result()
    child = Forked(lambda: __import__("time").sleep(60))
    child.stop()  # a build that fails ends its child
    with pytest.raises(OSError):
        os.waitpid(child.pid, os.WNOHANG)


def test_the_model_read_on_demand_equals_one_pass(tree: Path) -> None:
    """An incremental build reads statements from the store when first asked for; a full build
    reads them all in one pass (``Model.read_all``). Pages depend on the order of a subject's
    objects and of an object's incoming links, so both ways must give the same lists, in order."""
    from emkg.load import load_graph
    from emkg.project import open_project
    from emkg.site import Model, SiteInput

    project = open_project(tree)
    graph = load_graph(project)
    data = SiteInput(project=project, store=graph.store, prefixes=dict(graph.prefixes))
    lazy, whole = Model(data), Model(data)
    whole.read_all()
    subjects = sorted(lazy.subject_keys())
    assert subjects and subjects == sorted(whole.subject_keys())
    objects = sorted({o.value for s in subjects for objs in whole.statements_of(s).values() for o in objs
                      if type(o).__name__ == "NamedNode"})
    for s in subjects:
        assert lazy.statements_of(s) == whole.statements_of(s), s
        assert list(lazy.statements_of(s)) == list(whole.statements_of(s)), s  # the predicates' order too
    for o in objects:
        assert lazy.links_to(o) == whole.links_to(o), o
    assert lazy.statements_of("https://w3id.org/emkg/id/nothing") == whole.statements_of("https://w3id.org/emkg/id/nothing") == {}


def test_an_output_replaced_during_the_build_is_not_updated(tree: Path, tmp_path: Path, run_emkg, monkeypatch) -> None:
    """Another build that swapped in a new output while this one ran: this one refuses to update
    the new folder in place with its changes (exit 2, a one-line error), and the next build is full."""
    from emkg.incremental import IncrementalSite

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    root = tmp_path / "tree"
    shutil.copytree(tree, root, ignore=shutil.ignore_patterns(".cache"))
    out = tmp_path / "out"
    assert run_emkg("build", "--out", out, root=root)[0] == 0
    sub(first_update(root), 'schema:text "', 'schema:text "Edited by the test. ')
    original = IncrementalSite.update_in_place

    def after_another_build(self, tmp, target):
        shutil.copytree(target, tmp_path / "other")
        shutil.rmtree(target)
        (tmp_path / "other").rename(target)  # what a concurrent full build's swap does
        return original(self, tmp, target)

    monkeypatch.setattr(IncrementalSite, "update_in_place", after_another_build)
    before = _files(out)
    code, _out, err = run_emkg("build", "--out", out, root=root)
    assert code == 2 and "the output folder was replaced while this build ran" in err and "Traceback" not in err
    assert _files(out) == before
    monkeypatch.setattr(IncrementalSite, "update_in_place", original)
    assert run_emkg("build", "--out", out, root=root)[0] == 0
    full = tmp_path / "full"
    assert run_emkg("build", "--full", "--out", full, root=root)[0] == 0
    assert _files(out) == _files(full)
