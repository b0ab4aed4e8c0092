"""The installed command (``emkg.cli.run``): what ``main`` returns and prints reaches the caller
whole, although the process ends with ``os._exit`` (no interpreter teardown)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# buffered output, as in most shells and CI (a buffer left unflushed at exit would be lost)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}

DATA = """\
@prefix emkg: <https://w3id.org/emkg/def/> .
@prefix area: <https://w3id.org/emkg/id/area/> .
@prefix skos: <http://www.w3.org/2004/02/skos/core#> .

area:east-midlands a emkg:Region ; skos:prefLabel "East Midlands"@en .
"""

NAMES = """\
# title: Names
# description: Every preferred label, many times over (a long output).
PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
SELECT ?name ?n WHERE {
  ?x skos:prefLabel ?l BIND(STR(?l) AS ?name)
  VALUES ?a { 0 1 2 3 4 5 6 7 8 9 } VALUES ?b { 0 1 2 3 4 5 6 7 8 9 }
  VALUES ?c { 0 1 2 3 4 5 6 7 8 9 } VALUES ?d { 0 1 2 3 4 5 6 7 8 9 }
  BIND(?a * 1000 + ?b * 100 + ?c * 10 + ?d AS ?n)
}
ORDER BY ?n
"""


def _command(*args: str | Path) -> subprocess.CompletedProcess:
    """Run the command as installed; its output as text, line ends untouched (CSV has CRLF)."""
    done = subprocess.run([sys.executable, "-m", "emkg.cli", *map(str, args)], capture_output=True, timeout=120, env=ENV)
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode("utf-8"),
                                       done.stderr.decode("utf-8"))


def test_long_report_and_exit_code_arrive_whole(make_project, run_emkg, repo_root: Path) -> None:
    bad = (repo_root / "tests/data/invalid/syntax-unterminated-string.ttl").read_text(encoding="utf-8")
    root = make_project({f"data/bad-{n:03d}.ttl": bad for n in range(300)})
    code, expected, _err = run_emkg("validate", root=root)
    assert code == 1
    assert expected.count("data/bad-") >= 300 and len(expected) > 20_000, "a long report: every file named"
    done = _command("--root", root, "validate")
    assert done.returncode == 1, done.stderr
    assert done.stdout == expected, "the command's report differs from main()'s: not flushed before the exit?"


def test_a_reader_that_stops_early_gets_no_traceback(make_project) -> None:
    root = make_project({"data/areas.ttl": DATA, "queries/names.rq": NAMES})
    proc = subprocess.Popen([sys.executable, "-m", "emkg.cli", "--root", str(root), "query", "names", "--format", "csv"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0, env=ENV)
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.read(64)
    proc.stdout.close()  # like `| head -c 64`
    err = proc.stderr.read().decode("utf-8", "replace")
    code = proc.wait(timeout=120)
    assert first.startswith(b"name,n"), first
    assert code == 0, err
    assert "Traceback" not in err and "Exception ignored" not in err, err


def test_one_shot_commands_pause_the_collector(monkeypatch) -> None:
    import gc

    from emkg import cli

    seen: dict[str, bool] = {}

    def fake_run(args) -> int:
        seen[args.command] = gc.isenabled()
        return 0

    monkeypatch.setattr(cli, "_run", fake_run)
    gc.enable()
    assert cli.main(["validate"]) == 0
    assert cli.main(["serve"]) == 0
    assert seen == {"validate": False, "serve": True}, "validate should run with the collector paused, serve with it on"
    assert gc.isenabled(), "main() left the collector paused"
