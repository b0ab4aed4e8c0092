"""``emkg bench``: the synthetic tree generator and the benchmark runner (tiny sizes only; the real
runs are ``make bench``)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from emkg.bench import _extrapolate, build_phases, median_run, render_chart, render_table
from emkg.synth import FAULT_KINDS, MANIFEST, Plan

SMALL = 2000


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(autouse=True)
def fast_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """The generated trees are checked with the default engine; pySHACL is the equivalence tests' business."""
    monkeypatch.setenv("EMKG_SHACL_ENGINE", "pyshacl-turbo")


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory, request) -> dict[str, Path]:
    from emkg.project import open_project
    from emkg.synth import generate_tree

    repo = Path(request.config.rootpath)
    project = open_project(repo)
    base = tmp_path_factory.mktemp("synthetic")
    out = {}
    for name, faults, seed in (("clean", 0, 7), ("again", 0, 7), ("faulted", 2 * len(FAULT_KINDS), 7), ("other-seed", 0, 8)):
        generate_tree(project, base / name, SMALL, faults=faults, seed=seed)
        out[name] = base / name
    return out


def test_generator_is_deterministic(trees: dict[str, Path]) -> None:
    first, second = _tree_bytes(trees["clean"]), _tree_bytes(trees["again"])
    assert first.keys() == second.keys()
    assert first == second
    assert _tree_bytes(trees["other-seed"]) != first  # the seed matters


def test_generated_tree_is_a_complete_project(trees: dict[str, Path], repo_root: Path) -> None:
    root = trees["clean"]
    assert "[tool.emkg]" in (root / "pyproject.toml").read_text(encoding="utf-8")
    for folder in ("ontology", "shapes", "queries"):
        theirs = sorted(p.relative_to(repo_root / folder).as_posix() for p in (repo_root / folder).rglob("*") if p.is_file())
        ours = sorted(p.relative_to(root / folder).as_posix() for p in (root / folder).rglob("*") if p.is_file())
        assert ours == theirs, folder
    data = sorted(p.relative_to(root / "data").as_posix() for p in (root / "data").rglob("*.ttl"))
    assert "authorities.ttl" in data and "people.ttl" in data and "glossary.ttl" in data
    assert len([d for d in data if d.startswith("updates/")]) >= 4  # one file per update: something to be incremental about
    text = (root / "data" / "authorities.ttl").read_text(encoding="utf-8")
    assert "Synthetic Authority 0001" in text and "emkg:gssCode" in text
    manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["faults"] == [] and manifest["data_triples"] > 0


def test_plan_reaches_national_size() -> None:
    plan = Plan.for_size(1_000_000)
    authorities = plan.regions * (plan.counties_per_region * (1 + plan.districts_per_county) + plan.unitaries_per_region) + plan.park_authorities
    assert plan.regions == 9 and 300 <= authorities <= 340
    assert plan.updates * plan.sections_per_update > 10_000


def test_generated_triple_count_is_close_to_the_request(tmp_path: Path, repo_root: Path) -> None:
    from emkg.load import load_graph
    from emkg.project import open_project
    from emkg.synth import generate_tree

    generate_tree(open_project(repo_root), tmp_path / "t", 20_000)
    triples = len(load_graph(open_project(tmp_path / "t")))
    assert 0.85 * 20_000 <= triples <= 1.15 * 20_000


def test_clean_tree_validates(trees: dict[str, Path], run_emkg) -> None:
    code, out, err = run_emkg("validate", root=trees["clean"])
    assert code == 0, out + err
    assert "conforms" in out


def test_faulted_tree_reports_every_fault_kind(trees: dict[str, Path], run_emkg) -> None:
    root = trees["faulted"]
    manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    faults = manifest["faults"]
    assert {f["kind"] for f in faults} == set(FAULT_KINDS)
    assert len(faults) == 2 * len(FAULT_KINDS)
    assert len({f["focus"] for f in faults}) == len(faults)  # each on its own resource
    code, out, err = run_emkg("validate", "--format", "json", root=root)
    assert code == 1, err
    results = [r for r in json.loads(out)["results"] if r["severity"] == "violation"]
    for fault in faults:
        focus = {fault["focus"], fault.get("other")} - {None}
        found = [r for r in results if r["focus"] in focus and (fault["path"] is None or r["path"] == fault["path"])]
        assert found, f"no violation for fault {fault['kind']} on {fault['focus']}"


def test_generate_command(tmp_path: Path, repo_root: Path, run_emkg) -> None:
    code, out, err = run_emkg("bench", "generate", "--triples", "1500", "--out", tmp_path / "g", "--faults", "3", "--seed", "5",
                              root=repo_root)
    assert code == 0, err
    assert "3 faults" in out
    assert (tmp_path / "g" / "data" / "areas.ttl").is_file()


@pytest.fixture
def schema_only_project(tmp_path: Path, repo_root: Path) -> Path:
    """The project's ontology, shapes and queries, without data (so ``bench run`` skips the real data)."""
    root = tmp_path / "proj"
    for folder in ("ontology", "shapes", "queries"):
        shutil.copytree(repo_root / folder, root / folder)
    (root / "pyproject.toml").write_text('[tool.emkg]\nbase-iri = "https://w3id.org/emkg/"\n', encoding="utf-8")
    return root


def test_bench_run_writes_results_and_chart(schema_only_project: Path, run_emkg) -> None:
    root = schema_only_project
    code, out, err = run_emkg("bench", "run", "--sizes", "1200", "--naive-limit", "0", "--repeat", "2",
                              "--results", root / "results", root=root)
    assert code == 0, out + err
    doc = json.loads((root / "results" / "results.json").read_text(encoding="utf-8"))
    (entry,) = doc["sizes"]
    assert entry["requested"] == 1200 and entry["triples"] > 0
    assert isinstance(entry["emkg"]["steps"]["parse"], float)
    assert isinstance(entry["emkg"]["steps"]["validate"], float)
    assert entry["cli"]["validate"]["exit"] == 0
    assert entry["cli"]["validate"]["peak_rss_mb"] > 0
    # each command timed twice (the slower run recorded), the incremental build after its own edit each time
    for name in ("validate", "build", "incremental_build"):
        runs = entry["cli"][name]["runs_s"]
        assert len(runs) == 2 and entry["cli"][name]["seconds"] == max(runs), (name, entry["cli"][name])
    assert entry["cli"]["incremental_build"]["pages_rendered"] < entry["cli"]["incremental_build"]["pages_total"]
    assert "median of 2" in out
    tree, work = root / "bench" / "work" / "tree-1200", root / "bench" / "work"
    assert not list(tree.glob(".cache-run-*")) and not list(work.glob("site-1200*")), "the repeated runs' caches and sites are left"
    assert b"Edited by the benchmark" not in b"".join(f.read_bytes() for f in (tree / "data" / "updates").glob("*.ttl"))
    assert entry["naive"]["extrapolated"] is True  # above --naive-limit: never run
    svg = (root / "results" / "chart.svg").read_text(encoding="utf-8")
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert "triples" in out and "emkg" in out
    assert not (root / "bench" / "work" / "out-1200").exists()


def test_median_run_is_the_middle_run_and_never_hides_a_failure() -> None:
    runs = [{"seconds": 3.0, "exit": 0, "n": 0}, {"seconds": 1.0, "exit": 0, "n": 1}, {"seconds": 2.0, "exit": 1, "n": 2}]
    picked = median_run(runs)
    assert picked["n"] == 2 and picked["runs_s"] == [3.0, 1.0, 2.0]  # exit 1 (data problems) is a run like another
    assert "runs_s" not in runs[2], "the runs given are left as they were"
    failed = median_run([*runs, {"seconds": 0.5, "exit": 2, "n": 3}])
    assert failed["n"] == 3 and failed["exit"] == 2
    assert "runs_s" not in median_run(runs[:1])


def _entry(triples: int, naive: dict | None) -> dict:
    return {
        "requested": triples, "triples": triples,
        "emkg": {"steps": {"parse": 0.1 * triples / 1000, "validate": 0.2, "views": 0.1, "dumps": 0.1, "site": 0.5}},
        "naive": {"steps": dict(naive), "extrapolated": False} if naive is not None else {"steps": {}, "extrapolated": True},
        "cli": {},
    }


def test_extrapolation_is_labelled_and_follows_measured_growth() -> None:
    entries = [
        _entry(1000, {"parse": 1.0, "validate": 10.0, "views": 1.0, "serialize": 0.5}),
        _entry(10_000, {"parse": 10.0, "validate": 200.0, "views": 10.0, "serialize": 5.0}),
        _entry(100_000, None),
    ]
    _extrapolate(entries)
    big = entries[2]["naive"]
    assert big["extrapolated"] is True
    assert big["steps"]["parse"] == pytest.approx(100.0)
    assert big["steps"]["validate"] == pytest.approx(200.0 * 20)  # exponent log(20)/log(10) ~ 1.3
    assert "power law" in big["basis"]["validate"]
    assert entries[1]["naive"]["extrapolated"] is False
    doc = {"sizes": entries, "machine": {"cpus": 2, "platform": "test"}, "targets": {}}
    table = render_table(doc)
    assert "*" in table and "extrapolated" in table
    svg = render_chart(doc)
    assert "hatch" in svg and "100k triples" in svg


def test_build_phases_from_progress_lines() -> None:
    lines = [(0.5, "emkg: loading the sources"), (1.5, "emkg: validating 1,000 triples"), (2.0, "emkg: describing the dataset"),
             (2.5, "emkg: running the stored views"), (3.0, "emkg: rendering the site"), (3.2, "emkg: resource pages 10/10"),
             (4.0, "emkg: swapping the new output into place")]
    phases = build_phases(lines, 4.5)
    assert phases == {"parse": 1.0, "validate": 0.5, "dumps": 0.5, "views": 0.5, "site": 1.0, "swap": 0.5, "startup": 0.5}


def test_a_step_stopped_for_time_is_at_least_the_time_it_ran() -> None:
    """A naive step killed after 3000 s never shows less than 3000 s, whatever the growth says."""
    entries = [_entry(10_000, {"parse": 1.0, "validate": 50.0, "views": 5.0, "serialize": 0.5}),
               _entry(100_000, {"parse": 10.0, "views": 60.0, "serialize": 5.0})]
    entries[1]["naive"].update(missing=["validate"], at_least={"validate": 3000.0})
    _extrapolate(entries)
    big = entries[1]["naive"]
    assert big["steps"]["validate"] == pytest.approx(3000.0)
    assert "without finishing" in big["basis"]["validate"]
    assert big["steps"]["views"] == pytest.approx(60.0)  # measured: untouched


@pytest.mark.skipif(not Path("/proc/self/smaps_rollup").is_file(), reason="no /proc smaps_rollup (not Linux)")
def test_peak_memory_counts_every_process_of_the_command() -> None:
    """A command that forks: its peak is what its processes hold together (each page once), more
    than its largest process alone."""
    from emkg.bench import _spawn

    script = ("import os, time\n"
              "block = bytes(150 * 2**20).replace(b\"\\0\", b\"x\")\n"  # the parent's own 150 MB
              "pid = os.fork()\n"
              "if pid == 0:\n"
              "    mine = bytes(200 * 2**20).replace(b\"\\0\", b\"y\")\n"  # the child's own 200 MB; the parent's block is shared
              "    time.sleep(1.5)\n"
              "    os._exit(0)\n"
              "os.waitpid(pid, 0)\n")
    result = _spawn([sys.executable, "-c", script])
    assert result["exit"] == 0
    assert result["peak_tree_mb"] is not None
    assert result["peak_tree_mb"] > 330  # both blocks (the shared one once), not either process alone
    assert result["peak_tree_mb"] < 150 + 200 + 150 + 60  # the shared block is not counted twice
    assert result["peak_rss_mb"] < result["peak_tree_mb"]
