"""Remote SPARQL against real servers: Oxigraph (always) and Virtuoso (``-m virtuoso``), no mocks.

* every stored view answers the same rows on the server as embedded, after a push;
* push: idempotent, atomic when killed after staging, named graphs, blank nodes;
* failures: one line, the documented exit code, the endpoint named, no credential shown;
* ``emkg serve``: starts, answers, stops on Ctrl-C and leaves nothing behind.

CLI behaviour (exit codes, stderr) runs ``emkg`` in a subprocess; the rest uses the Python API.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pyoxigraph as ox
import pytest

from conftest_servers import fresh_oxigraph, oxigraph_server, virtuoso_server  # noqa: F401 (fixtures)
from servers import FixedStatusServer, closed_port

from emkg import endpoint
from emkg.endpoint import EndpointConfig, push, run_remote
from emkg.errors import RemoteError, UsageError
from emkg.load import load_graph
from emkg.project import open_project
from emkg.views import FORMATS, bind_params, format_result, list_views, run_local

REPO = Path(__file__).resolve().parent.parent
SECRET = "s3cret-Pa55word"
EX = "https://w3id.org/emkg/id/area/"

TINY_DATA = f"""@prefix area: <{EX}> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix ex: <https://w3id.org/emkg/def/> .

area:derbyshire rdfs:label "Derbyshire"@en ;
    ex:count 3 ;
    ex:flag true ;
    ex:founded "1974-04-01"^^xsd:date ;
    ex:note "tab\\there, \\"quoted\\", newline\\nthere, café" ;
    ex:ratio 0.5 .
area:rutland rdfs:label "Rutland"@en ;
    ex:count 1 ;
    ex:flag false .
"""

TINY_QUERY = """# title: Tiny
# description: every triple of an area
# param: area iri optional  The area, e.g. https://w3id.org/emkg/id/area/derbyshire
SELECT ?area ?p ?o WHERE { ?area ?p ?o } ORDER BY ?area ?p ?o
"""


# --- helpers ---------------------------------------------------------------------------------------

def emkg(*args: str | Path, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the ``emkg`` command in a subprocess with a clean EMKG_* environment."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EMKG_")}
    clean.update(env or {})
    return subprocess.run([sys.executable, "-m", "emkg.cli", *map(str, args)], capture_output=True, text=True,
                          env=clean, timeout=timeout, cwd=REPO)


def one_line_error(done: subprocess.CompletedProcess, code: int) -> str:
    """The failure's message: the exit code is ``code`` and stderr ends in one 'emkg: error:' line."""
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("emkg: error: "), done.stderr
    return last


def config_for(server, graph: str | None = None, **kw) -> EndpointConfig:
    return EndpointConfig(query_url=server.query_url, update_url=server.update_url, graph=graph, timeout=60,
                          retries=1, **kw)


def rows_as_text(result) -> list[tuple[str | None, ...]]:
    return [tuple(None if t is None else str(t) for t in row) for row in result.rows]


@pytest.fixture
def tiny(make_project):
    """A tiny project: a few triples of every literal kind and one stored view."""
    return make_project({"data/areas.ttl": TINY_DATA, "queries/tiny.rq": TINY_QUERY})


def tiny_triples(extra: str = "") -> list[ox.Triple]:
    return [q.triple for q in ox.parse(TINY_DATA + extra, format=ox.RdfFormat.TURTLE)]


# --- the project's stored views, embedded and remote -----------------------------------------------

REAL = open_project(REPO)
try:
    VIEWS = list_views(REAL)
    VIEWS_ERROR = None
except Exception as exc:  # a broken view is reported by its own test, not as a collection error here
    VIEWS, VIEWS_ERROR = [], f"{type(exc).__name__}: {exc}"
_EXAMPLE_IRI = re.compile(r"https://w3id\.org/emkg/id/[^\s,;)]+[^\s,;).]")


def _view_cases() -> list:
    """Each view without parameters, then with each parameter that has an example value bound."""
    cases = []
    for view in VIEWS:
        if not any(p.required for p in view.params):
            cases.append(pytest.param(view.name, {}, id=view.name))
        for param in view.params:
            example = None
            if param.type == "iri":
                found = _EXAMPLE_IRI.search(param.description)
                example = found.group() if found else None
            elif param.type == "date":
                example = "2020-06-01"
            if example is not None:
                cases.append(pytest.param(view.name, {param.name: example}, id=f"{view.name}-{param.name}"))
    if VIEWS_ERROR:
        return [pytest.param(None, {}, id="views-unreadable", marks=pytest.mark.xfail(
            reason=f"the stored views cannot be read: {VIEWS_ERROR}", run=False, strict=True))]
    return cases or [pytest.param(None, {}, id="no-views", marks=pytest.mark.skip(reason="no stored views yet"))]


VIEW_CASES = _view_cases()


@pytest.fixture(scope="module")
def real_graph():
    graph = load_graph(REAL)
    assert not graph.problems, graph.problems
    return graph


def _real_triples(graph) -> list[ox.Triple]:
    return [q.triple for q in graph.store.quads_for_pattern(None, None, None, ox.DefaultGraph())]


@pytest.fixture(scope="module")
def oxigraph_with_project(oxigraph_server, real_graph):
    config = config_for(oxigraph_server)
    report = push(REAL, config, triples=_real_triples(real_graph))
    assert report.matches
    return config


def _compare_view(config: EndpointConfig, graph, name: str, params: dict[str, str]) -> None:
    view = next(v for v in VIEWS if v.name == name)
    text = bind_params(view, params)
    local = run_local(graph.store, text, name)
    remote = run_remote(config, text, name)
    assert remote.variables == local.variables
    assert rows_as_text(remote) == rows_as_text(local), f"view {name} {params}: server rows differ from embedded"
    for fmt in FORMATS:
        assert format_result(remote, fmt) == format_result(local, fmt)


@pytest.mark.parametrize(("name", "params"), VIEW_CASES)
def test_view_rows_on_oxigraph_equal_embedded(oxigraph_with_project, real_graph, name, params):
    _compare_view(oxigraph_with_project, real_graph, name, params)


def test_cli_query_on_endpoint_prints_what_embedded_prints(oxigraph_server, tiny):
    config = config_for(oxigraph_server, graph="urn:emkg:test:cli")
    push(open_project(tiny), config, triples=tiny_triples())
    env = {"EMKG_GRAPH": "urn:emkg:test:cli"}
    cases = [(["tiny", "--param", "area=derbyshire"], fmt) for fmt in FORMATS]
    cases += [(["tiny"], "tsv"), (["--file", tiny / "queries" / "tiny.rq"], "table")]
    for args, fmt in cases:
        if True:
            local = emkg("--root", tiny, "query", *args, "--format", fmt)
            remote = emkg("--root", tiny, "query", *args, "--format", fmt, "--endpoint", oxigraph_server.query_url,
                          env=env)
            assert local.returncode == remote.returncode == 0, (local.stderr, remote.stderr)
            assert remote.stdout == local.stdout
            assert remote.stderr == ""
    only = emkg("--root", tiny, "query", "tiny", "--param", "area=rutland", "--format", "csv",
                env={**env, "EMKG_ENDPOINT": oxigraph_server.query_url})
    assert only.returncode == 0 and "derbyshire" not in only.stdout and "rutland" in only.stdout


# --- push ------------------------------------------------------------------------------------------

def _server_triples(config: EndpointConfig, graph: str | None) -> set[str]:
    pattern = f"GRAPH <{graph}> {{ ?s ?p ?o }}" if graph else "?s ?p ?o"
    plain = EndpointConfig(query_url=config.query_url)
    result = run_remote(plain, f"SELECT ?s ?p ?o WHERE {{ {pattern} }}")
    return {" ".join(str(t) for t in row) for row in result.rows}


def _local_triples(triples) -> set[str]:
    return {f"{t.subject} {t.predicate} {t.object}" for t in triples}


@pytest.mark.parametrize("store", [False, True], ids=["sparql-update", "graph-store"])
@pytest.mark.parametrize("graph", [None, "urn:emkg:test:target"], ids=["default-graph", "named-graph"])
def test_push_twice_gives_the_same_data(fresh_oxigraph, tiny, store, graph):
    project = open_project(tiny)
    config = EndpointConfig(query_url=fresh_oxigraph.query_url, update_url=fresh_oxigraph.update_url,
                            store_url=fresh_oxigraph.store_url if store else None, graph=graph, retries=0)
    triples = tiny_triples()
    for _ in range(2):
        report = push(project, config, batch_size=3, triples=triples)  # several batches
        assert report.matches and report.remote == len(set(triples))
    assert _server_triples(config, graph) == _local_triples(triples)
    assert endpoint._graphs_under(config, endpoint.STAGING_PREFIX) == []  # no staging graph left


def test_cli_push_reports_the_check(fresh_oxigraph, tiny):
    args = ["--root", tiny, "push", "--endpoint", fresh_oxigraph.query_url, "--update-endpoint",
            fresh_oxigraph.update_url]
    first, second = emkg(*args), emkg(*args, "--store-endpoint", fresh_oxigraph.store_url)
    for done in (first, second):
        assert done.returncode == 0, done.stderr
        assert f"checked: the server holds {len(tiny_triples())} triples in the default graph, as many as the local graph" in done.stdout


def test_push_published_trig_with_named_graphs(fresh_oxigraph, tiny):
    """A build's emkg.trig: the whole graph into the target, each named graph under its own IRI;
    a named graph the next build no longer has is dropped in the same swap."""
    base = "https://w3id.org/emkg/graph/"
    public = tiny / "public"
    public.mkdir()
    (public / "emkg.trig").write_text(
        f"<{base}source/a> {{ <{EX}a> <{EX}p> 1 . <{EX}a> <{EX}q> 2 . }}\n"
        f"<{base}source/b> {{ <{EX}b> <{EX}p> 3 . }}\n", encoding="utf-8")
    project = open_project(tiny)
    config = config_for(fresh_oxigraph)
    report = push(project, config)
    assert (report.local, report.remote, report.graphs, report.named_remote) == (3, 3, 2, 3)
    (public / "emkg.trig").write_text(f"<{base}source/c> {{ <{EX}c> <{EX}p> 4 . }}\n", encoding="utf-8")
    done = emkg("--root", tiny, "push", "--endpoint", fresh_oxigraph.query_url,
                "--update-endpoint", fresh_oxigraph.update_url)
    assert done.returncode == 0, done.stderr
    assert "dropped 2 named graph(s)" in done.stdout
    assert endpoint._graphs_under(config, base) == [f"{base}source/c"]
    assert endpoint.count_triples(config, None) == 1


def test_push_killed_after_staging_leaves_the_old_data(fresh_oxigraph, tiny):
    """The push dies hard (like SIGKILL) once its staging graph is loaded: every reader still sees
    the previous data; the next push drops the leftover staging graph and swaps the new data in."""
    project = open_project(tiny)
    config = config_for(fresh_oxigraph)
    push(project, config, triples=tiny_triples())
    view = bind_params(next(v for v in list_views(project) if v.name == "tiny"), {})
    before = rows_as_text(run_remote(config, view))
    (tiny / "data" / "more.ttl").write_text(f"<{EX}leicester> <http://www.w3.org/2000/01/rdf-schema#label> "
                                            f"\"Leicester\"@en .\n", encoding="utf-8")
    args = ["--root", tiny, "push", "--endpoint", fresh_oxigraph.query_url, "--update-endpoint",
            fresh_oxigraph.update_url]
    killed = emkg(*args, env={"EMKG_PUSH_FAIL_AFTER": "staging"})
    assert killed.returncode == 70, killed.stderr
    assert endpoint._graphs_under(config, endpoint.STAGING_PREFIX) == [endpoint.staging_graph(None)]
    assert rows_as_text(run_remote(config, view)) == before
    assert endpoint.count_triples(config, None) == len(tiny_triples())
    done = emkg(*args)
    assert done.returncode == 0, done.stderr
    after = rows_as_text(run_remote(config, view))
    assert len(after) == len(before) + 1 and any("leicester" in str(row) for row in after)
    assert endpoint._graphs_under(config, endpoint.STAGING_PREFIX) == []


def test_push_skolemises_blank_nodes_deterministically(fresh_oxigraph, tiny):
    extra = f"<{EX}derbyshire> <{EX}part> [ <{EX}name> \"a\" ; <{EX}part> [ <{EX}name> \"b\" ] ] .\n"
    (tiny / "data" / "blank.ttl").write_text(extra, encoding="utf-8")
    config = config_for(fresh_oxigraph)
    counts = [push(open_project(tiny), config).remote for _ in range(2)]
    assert counts[0] == counts[1] == len(tiny_triples()) + 4
    server = _server_triples(config, None)
    assert not any(" _:" in row or row.startswith("_:") for row in server)
    assert any("/.well-known/genid/emkg-" in row for row in server)


def test_push_refuses_an_empty_graph(fresh_oxigraph, make_project):
    done = emkg("--root", make_project(), "push", "--endpoint", fresh_oxigraph.query_url,
                "--update-endpoint", fresh_oxigraph.update_url)
    assert "nothing to push" in one_line_error(done, 1)


def test_push_needs_the_update_endpoint(tiny):
    done = emkg("--root", tiny, "push", "--endpoint", "http://127.0.0.1:9/query")
    assert "--update-endpoint" in one_line_error(done, 2)


# --- failures --------------------------------------------------------------------------------------

@pytest.mark.parametrize("wrong", ["query", "update", "store"])
def test_wrong_url_names_the_endpoint(fresh_oxigraph, tiny, wrong):
    urls = {"query": fresh_oxigraph.query_url, "update": fresh_oxigraph.update_url, "store": fresh_oxigraph.store_url}
    urls[wrong] = fresh_oxigraph.base + "/nowhere"
    done = emkg("--root", tiny, "push", "--endpoint", urls["query"], "--update-endpoint", urls["update"],
                "--store-endpoint", urls["store"], "--retries", "0")
    line = one_line_error(done, 3)
    option = {"query": "--endpoint", "update": "--update-endpoint", "store": "--store-endpoint"}[wrong]
    assert "404" in line and f"wrong {option} URL" in line and "/nowhere" in line


def test_dead_server_is_a_clear_usage_error(tiny):
    port = closed_port()
    start = time.monotonic()
    done = emkg("--root", tiny, "query", "tiny", "--endpoint", f"http://127.0.0.1:{port}/sparql", "--retries", "2")
    line = one_line_error(done, 2)
    assert f"cannot reach the SPARQL query endpoint http://127.0.0.1:{port}/sparql" in line
    assert "connection refused" in line and "after 3 attempts" in line
    assert done.stderr.count("retrying in") == 2 and "retrying in 0.5 s" in done.stderr and "retrying in 1 s" in done.stderr
    assert time.monotonic() - start >= 1.5  # exponential backoff: 0.5 s then 1 s


def test_server_error_is_retried_then_exit_3(tiny):
    with FixedStatusServer(500, b"the disk is on fire") as server:
        done = emkg("--root", tiny, "query", "tiny", "--endpoint", server.url + "/sparql", "--retries", "2")
        assert len(server.requests) == 3
    line = one_line_error(done, 3)
    assert "HTTP 500" in line and "the disk is on fire" in line and "after 3 attempts" in line
    assert done.stderr.count("retrying in") == 2


@pytest.mark.parametrize("status", [400, 403])
def test_client_errors_are_not_retried(tiny, status):
    with FixedStatusServer(status, b"no such thing") as server:
        done = emkg("--root", tiny, "query", "tiny", "--endpoint", server.url + "/sparql", "--retries", "3")
        assert len(server.requests) == 1
    line = one_line_error(done, 3)
    assert f"HTTP {status}" in line and "no such thing" in line and "retrying" not in done.stderr


def test_unauthorized_names_the_missing_credential_never_the_password(tiny):
    challenge = {"WWW-Authenticate": 'Basic realm="sparql"'}
    with FixedStatusServer(401, b"", challenge) as server:
        url = server.url + "/sparql"
        base = ["--root", tiny, "query", "tiny", "--endpoint"]
        no_user = one_line_error(emkg(*base, url), 3)
        no_password = one_line_error(emkg(*base, url, env={"EMKG_USER": "alice"}), 3)
        refused = emkg(*base, url, env={"EMKG_USER": "alice", "EMKG_PASSWORD": SECRET})
        in_url = emkg(*base, url.replace("http://", f"http://alice:{SECRET}@"))
        as_flag = emkg(*base, url, "--user", "alice", "--password", SECRET, "-vv")
        sent = [headers.get("Authorization", "") for _, _, headers in server.requests]
    assert "401" in no_user and "no user name was given" in no_user
    assert "no password was given" in no_password and "EMKG_PASSWORD" in no_password
    for done in (refused, in_url, as_flag):
        line = one_line_error(done, 3)
        assert "refused the credentials" in line
        assert SECRET not in done.stderr + done.stdout
    assert "alice:" not in in_url.stderr and f"{url}" in in_url.stderr  # the URL shown without its userinfo
    assert any(h.startswith("Basic ") for h in sent)  # the credentials were sent, just never shown


def test_timeout_is_one_line(tiny):
    with FixedStatusServer(200, b"{}", delay=3) as server:
        start = time.monotonic()
        done = emkg("--root", tiny, "query", "tiny", "--endpoint", server.url + "/sparql", "--timeout", "0.5")
        assert time.monotonic() - start < 3
    assert "did not answer within 0.5 s" in one_line_error(done, 3)


def test_truncated_results_warn(tiny):
    body = json.dumps({"head": {"vars": ["area", "p", "o"]}, "results": {"bindings": []}}).encode()
    headers = {"Content-Type": "application/sparql-results+json", "X-SPARQL-MaxRows": "10000"}
    with FixedStatusServer(200, body, headers) as server:
        done = emkg("--root", tiny, "query", "tiny", "--endpoint", server.url + "/sparql")
    assert done.returncode == 0, done.stderr
    assert "cut the results at 10000 rows" in done.stderr and "ResultSetMaxRows" in done.stderr


def test_not_a_sparql_endpoint(fresh_oxigraph, tiny):
    done = emkg("--root", tiny, "query", "tiny", "--endpoint", fresh_oxigraph.base + "/")
    assert "did not answer with SPARQL JSON results (got text/html)" in one_line_error(done, 3)


def test_rejected_query_shows_the_server_message(fresh_oxigraph, tiny):
    bad = tiny / "bad.rq"
    bad.write_text("SELECT ?x WHERE { ?x ?y }\n", encoding="utf-8")
    done = emkg("--root", tiny, "query", "--file", bad, "--endpoint", fresh_oxigraph.query_url)
    line = one_line_error(done, 3)
    assert re.search(r"refused to run the query \(HTTP 400\): error at \d+:\d+: expected", line)


def test_settings_from_flags_env_and_url():
    args = SimpleNamespace(endpoint=None, update_endpoint="https://bob:pw%40x@example.org/update", user=None,
                           password=None, auth=None, timeout=5, retries=0, graph="<urn:g>")
    config = EndpointConfig.from_args(args, env={"EMKG_ENDPOINT": "https://example.org/query",
                                                 "EMKG_STORE_ENDPOINT": "https://example.org/store"})
    assert config.query_url == "https://example.org/query" and config.store_url == "https://example.org/store"
    assert config.update_url == "https://example.org/update"
    assert (config.user, config.password, config.graph) == ("bob", "pw@x", "urn:g")
    assert "pw@x" not in repr(config)
    flags = EndpointConfig.from_args(SimpleNamespace(endpoint="http://h/q", user="u", password="p", auth="digest"),
                                     env={"EMKG_ENDPOINT": "http://other/q", "EMKG_USER": "v"})
    assert (flags.query_url, flags.user, flags.auth, flags.timeout, flags.retries) == ("http://h/q", "u", "digest", 60, 3)
    with pytest.raises(UsageError, match="not an http"):
        EndpointConfig.from_args(SimpleNamespace(endpoint="ftp://alice:secret@h/q"), env={})
    with pytest.raises(UsageError) as caught:
        EndpointConfig.from_args(SimpleNamespace(endpoint="alice:secret@h/q"), env={})
    assert "secret" not in str(caught.value)
    with pytest.raises(UsageError, match="absolute IRI"):
        EndpointConfig.from_args(SimpleNamespace(graph="not an iri"), env={})


def test_json_results_from_other_engines_become_the_same_terms():
    """Virtuoso's 'typed-literal', booleans stored as 1/0 and nodeID:// blank nodes."""
    document = {"head": {"vars": ["a", "b", "c", "d", "e"]}, "results": {"bindings": [
        {"a": {"type": "typed-literal", "datatype": endpoint.XSD_BOOLEAN, "value": "1"},
         "b": {"type": "typed-literal", "datatype": endpoint.XSD_STRING, "value": "x"},
         "c": {"type": "bnode", "value": "nodeID://b10001"},
         "d": {"type": "literal", "xml:lang": "en", "value": "y"}},
        {"c": {"type": "bnode", "value": "nodeID://b10001"}, "e": {"type": "uri", "value": "http://e"}}]}}
    variables, rows = endpoint.results_to_rows(document)
    assert variables == ["a", "b", "c", "d", "e"]
    assert rows[0][:2] == (ox.Literal("true", datatype=ox.NamedNode(endpoint.XSD_BOOLEAN)), ox.Literal("x"))
    assert rows[0][2] == rows[1][2] and isinstance(rows[0][2], ox.BlankNode)
    assert rows[0][3] == ox.Literal("y", language="en") and rows[0][4] is None
    assert rows[1][4] == ox.NamedNode("http://e")
    with pytest.raises(RemoteError):
        endpoint.results_to_rows({"head": {"vars": ["a"]}, "results": {"bindings": [{"a": {"type": "triple"}}]}})


# --- serve -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("built", "stop"), [(False, signal.SIGINT), (True, signal.SIGTERM)],
                         ids=["sources-ctrl-c", "built-sigterm"])
def test_serve_answers_then_stops_cleanly(tiny, tmp_path, built, stop):
    if built:
        (tiny / "public").mkdir()
        (tiny / "public" / "emkg.ttl").write_text(TINY_DATA, encoding="utf-8")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMKG_")}
    env["TMPDIR"] = str(scratch)
    proc = subprocess.Popen([sys.executable, "-m", "emkg.cli", "--root", str(tiny), "serve", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.strip().startswith("store:"):
                break
        urls = dict(re.findall(r"^\s*(query|update|store):\s+(\S+)", "".join(lines), re.M))
        assert set(urls) == {"query", "update", "store"}, (lines, proc.stderr.read() if proc.poll() is not None else "")
        assert lines[0].startswith(f"serving {len(tiny_triples())} triples from " + ("public/emkg.ttl" if built else "the project's sources"))
        assert any(scratch.iterdir())  # the server's data folder
        config = EndpointConfig(query_url=urls["query"])
        view = bind_params(next(v for v in list_views(open_project(tiny)) if v.name == "tiny"), {})
        local = run_local(load_graph(open_project(tiny)).store, view)
        assert rows_as_text(run_remote(config, view)) == rows_as_text(local)
        proc.send_signal(stop)  # Ctrl-C, or kill
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "stopped" in out and "Traceback" not in err
    assert list(scratch.iterdir()) == []  # temp folder removed
    port = int(urls["query"].rsplit(":", 1)[1].split("/")[0])
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass  # the server is gone


def test_serve_port_in_use_is_one_line(tiny):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        done = emkg("--root", tiny, "serve", "--port", str(busy.getsockname()[1]))
    assert "choose another --port" in one_line_error(done, 2)


# --- Virtuoso --------------------------------------------------------------------------------------

VIRTUOSO_GRAPH = "https://w3id.org/emkg/graph/test"


def virtuoso_config(server, graph: str | None = VIRTUOSO_GRAPH, **kw) -> EndpointConfig:
    return EndpointConfig(query_url=server.query_url, update_url=server.update_url, graph=graph, timeout=60,
                          retries=1, **kw)


@pytest.fixture(scope="module")
def virtuoso_with_project(virtuoso_server, real_graph):
    config = virtuoso_config(virtuoso_server)
    report = push(REAL, config, triples=_real_triples(real_graph))
    assert report.matches
    return config


@pytest.mark.slow
@pytest.mark.virtuoso
@pytest.mark.parametrize(("name", "params"), VIEW_CASES)
def test_view_rows_on_virtuoso_equal_embedded(virtuoso_with_project, real_graph, name, params):
    _compare_view(virtuoso_with_project, real_graph, name, params)


@pytest.mark.slow
@pytest.mark.virtuoso
@pytest.mark.parametrize("store", [False, True], ids=["sparql-update", "graph-store"])
def test_virtuoso_push_twice_gives_the_same_data(virtuoso_server, tiny, store):
    graph = f"urn:emkg:test:twice-{store}"
    config = virtuoso_config(virtuoso_server, graph, store_url=virtuoso_server.store_url if store else None)
    triples = tiny_triples()
    for _ in range(2):
        report = push(open_project(tiny), config, batch_size=4, triples=triples)
        assert report.matches and report.remote == len(triples)
    # Virtuoso answers with its own lexical forms (0.5 -> 0.5, true -> 1): compare through the converter
    assert len(_server_triples(config, graph)) == len(triples)
    assert endpoint._graphs_under(config, endpoint.STAGING_PREFIX) == []


@pytest.mark.slow
@pytest.mark.virtuoso
def test_virtuoso_push_killed_after_staging_leaves_the_old_data(virtuoso_server, tiny):
    graph = "urn:emkg:test:killed"
    config = virtuoso_config(virtuoso_server, graph)
    push(open_project(tiny), config, triples=tiny_triples())
    view = bind_params(next(v for v in list_views(open_project(tiny)) if v.name == "tiny"), {})
    before = rows_as_text(run_remote(config, view))
    (tiny / "data" / "more.ttl").write_text(f"<{EX}leicester> <{EX}p> 1 .\n", encoding="utf-8")
    args = ["--root", tiny, "push", "--endpoint", virtuoso_server.query_url, "--update-endpoint",
            virtuoso_server.update_url, "--store-endpoint", virtuoso_server.store_url, "--graph", graph]
    killed = emkg(*args, env={"EMKG_PUSH_FAIL_AFTER": "staging"})
    assert killed.returncode == 70, killed.stderr
    assert rows_as_text(run_remote(config, view)) == before
    done = emkg(*args)
    assert done.returncode == 0, done.stderr
    assert len(run_remote(config, view).rows) == len(before) + 1
    assert endpoint._graphs_under(config, endpoint.STAGING_PREFIX) == []


@pytest.mark.slow
@pytest.mark.virtuoso
def test_virtuoso_default_graph_push_is_refused_clearly(virtuoso_server, tiny):
    done = emkg("--root", tiny, "push", "--endpoint", virtuoso_server.query_url,
                "--update-endpoint", virtuoso_server.update_url)
    line = one_line_error(done, 3)
    assert "SP031" in line and "--graph IRI" in line


@pytest.mark.slow
@pytest.mark.virtuoso
def test_virtuoso_digest_auth(virtuoso_server, tiny):
    user, password = virtuoso_server.writer
    graph = "urn:emkg:test:digest"
    args = ["--root", tiny, "push", "--endpoint", virtuoso_server.query_url, "--update-endpoint",
            virtuoso_server.auth_url, "--store-endpoint", virtuoso_server.auth_store_url, "--graph", graph]
    env = {"EMKG_USER": user, "EMKG_PASSWORD": password}
    done = emkg(*args, "--auth", "digest", env=env)
    assert done.returncode == 0, done.stderr
    assert f"checked: the server holds {len(tiny_triples())} triples in <urn:emkg:test:digest>" in done.stdout
    basic = emkg(*args, env=env)
    line = one_line_error(basic, 3)
    assert "401" in line and "--auth digest" in line
    wrong = emkg(*args, "--auth", "digest", env={"EMKG_USER": user, "EMKG_PASSWORD": SECRET})
    assert "refused the credentials" in one_line_error(wrong, 3)
    no_login = emkg(*args, "--auth", "digest")
    assert "no user name was given" in one_line_error(no_login, 3)
    for run in (done, basic, wrong, no_login):
        assert password not in run.stdout + run.stderr and SECRET not in run.stdout + run.stderr


@pytest.mark.slow
@pytest.mark.virtuoso
def test_virtuoso_truncation_warns(virtuoso_server, tmp_path, make_project):
    limit = virtuoso_server.max_rows
    query = tmp_path / "many.rq"
    query.write_text("SELECT ?a WHERE { ?a ?b ?c . ?d ?e ?f }\n", encoding="utf-8")  # system triples, squared
    done = emkg("--root", make_project(), "query", "--file", query, "--format", "tsv",
                "--endpoint", virtuoso_server.query_url)
    assert done.returncode == 0, done.stderr
    assert f"cut the results at {limit} rows" in done.stderr
    assert done.stdout.count("\n") == limit + 1


@pytest.mark.slow
@pytest.mark.virtuoso
def test_virtuoso_errors_are_one_line(virtuoso_server, tiny):
    bad = tiny / "bad.rq"
    bad.write_text("SELECT ?x WHERE { ?x ?y }\n", encoding="utf-8")
    rejected = one_line_error(emkg("--root", tiny, "query", "--file", bad, "--endpoint", virtuoso_server.query_url), 3)
    assert "HTTP 400" in rejected and "Virtuoso 37000 Error SP030" in rejected
    assert "define sql:" not in rejected  # the echo of the query is cut off
    wrong = emkg("--root", tiny, "query", "tiny", "--endpoint", virtuoso_server.base + "/sparq")
    assert "wrong --endpoint URL" in one_line_error(wrong, 3)
