"""Pytest fixtures that start real SPARQL servers (helpers in ``servers.py``).

Import them into a test module (``from conftest_servers import oxigraph_server, ...``), or register
this module as a plugin from the top-level conftest (``pytest_plugins = ["conftest_servers"]``).

* ``oxigraph_server`` (session): one in-memory Oxigraph shared by the session;
* ``fresh_oxigraph`` (function): a new, empty in-memory Oxigraph (starts in ~0.3 s);
* ``virtuoso_server`` (session): Debian's Virtuoso 7 in a temporary folder; skipped when
  ``virtuoso-t`` is not installed, but a failure under CI (``CI`` set), where it must be there.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from servers import OxigraphServer, VirtuosoServer, oxigraph_exe

# seconds spent starting servers, reported at the end of the session (see pytest_terminal_summary)
STARTUP_SECONDS: dict[str, float] = {}


def _need_oxigraph() -> None:
    if oxigraph_exe() is None:
        message = "the oxigraph server CLI is not installed (pip install -e '.[test]' provides it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def oxigraph_server() -> Iterator[OxigraphServer]:
    _need_oxigraph()
    start = time.monotonic()
    server = OxigraphServer().start()
    STARTUP_SECONDS["oxigraph"] = time.monotonic() - start
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fresh_oxigraph() -> Iterator[OxigraphServer]:
    _need_oxigraph()
    server = OxigraphServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def virtuoso_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VirtuosoServer]:
    if not VirtuosoServer.available():
        message = ("virtuoso-t is not installed (Debian package virtuoso-opensource; "
                   "'make tools' or .ci/install-tools installs it)")
        if os.environ.get("CI"):
            pytest.fail(message + ": CI must run the Virtuoso tests")
        pytest.skip(message)
    start = time.monotonic()
    server = VirtuosoServer(tmp_path_factory.mktemp("virtuoso"), max_rows=50_000)
    try:
        server.start()
    except Exception:
        server.stop()
        raise
    STARTUP_SECONDS["virtuoso"] = time.monotonic() - start
    try:
        yield server
    finally:
        server.stop()
