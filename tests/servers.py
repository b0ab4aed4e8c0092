"""Real servers for the tests: Oxigraph, Virtuoso, and a tiny misbehaving HTTP server of our own.

Plain helpers (no pytest here): the fixtures that start and stop them live in ``conftest_servers.py``.
All of them listen on 127.0.0.1 on a free port and are stopped with SIGTERM.
"""

from __future__ import annotations

import http.server
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

VIRTUOSO_INI = Path("/etc/virtuoso-opensource-7/virtuoso.ini")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def closed_port() -> int:
    """A loopback port nothing listens on (taken from the kernel, then released)."""
    return free_port()


def oxigraph_exe() -> str | None:
    beside = Path(sys.executable).parent / "oxigraph"
    if beside.is_file():
        return str(beside)
    return shutil.which("oxigraph")


def wait_http(url: str, proc: subprocess.Popen | None = None, timeout: float = 60.0) -> None:
    """Until ``url`` answers any HTTP status (or the process dies, or time runs out)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"no answer from {url} within {timeout} s")


def stop_process(proc: subprocess.Popen, timeout: float = 20.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- Oxigraph --------------------------------------------------------------------------------------

@dataclass
class OxigraphServer:
    """``oxigraph serve`` on a free loopback port, in memory (or in ``location``)."""

    location: Path | None = None
    port: int = 0
    proc: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def query_url(self) -> str:
        return self.base + "/query"

    @property
    def update_url(self) -> str:
        return self.base + "/update"

    @property
    def store_url(self) -> str:
        return self.base + "/store"

    def start(self) -> OxigraphServer:
        exe = oxigraph_exe()
        if exe is None:
            raise RuntimeError("the oxigraph server CLI is not installed (pip install oxigraph)")
        self.port = free_port()
        command = [exe, "serve", "--bind", f"127.0.0.1:{self.port}"]
        if self.location is not None:
            command += ["--location", str(self.location)]
        self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_http(self.query_url + "?query=ASK%7B%7D", self.proc, timeout=30)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)

    def update(self, text: str) -> None:
        data = urllib.parse.urlencode({"update": text}).encode()
        with urllib.request.urlopen(urllib.request.Request(self.update_url, data=data), timeout=30):
            pass


# --- Virtuoso --------------------------------------------------------------------------------------

@dataclass
class VirtuosoServer:
    """Debian's Virtuoso 7 in its own folder, started as /work/shared/RECIPES.md says.

    ``/sparql`` may update (``GRANT SPARQL_UPDATE TO "SPARQL"``); user ``writer`` (password
    ``writer-pw``) may update through ``/sparql-auth`` and ``/sparql-graph-crud-auth`` with digest auth.
    """

    folder: Path
    max_rows: int = 1_000_000
    sql_port: int = 0
    http_port: int = 0
    dba_password: str = "dba-test-pw"
    writer: tuple[str, str] = ("writer", "writer-pw")
    started: bool = False
    log: list[str] = field(default_factory=list)

    @staticmethod
    def available() -> bool:
        return shutil.which("virtuoso-t") is not None and shutil.which("isql-vt") is not None and VIRTUOSO_INI.is_file()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def query_url(self) -> str:
        return self.base + "/sparql"

    update_url = query_url

    @property
    def store_url(self) -> str:
        return self.base + "/sparql-graph-crud"

    @property
    def auth_url(self) -> str:
        return self.base + "/sparql-auth"

    @property
    def auth_store_url(self) -> str:
        return self.base + "/sparql-graph-crud-auth"

    def start(self) -> VirtuosoServer:
        self.sql_port, self.http_port = free_port(), free_port()
        while self.http_port == self.sql_port:
            self.http_port = free_port()
        db = self.folder / "db"
        (self.folder / "load").mkdir(parents=True, exist_ok=True)
        db.mkdir(parents=True, exist_ok=True)
        text = VIRTUOSO_INI.read_text(encoding="utf-8")
        lines = []
        for line in text.replace("/var/lib/virtuoso-opensource-7/db", str(db)).splitlines():
            stripped = line.replace(" ", "")
            if stripped.startswith("ServerPort=1111"):
                line = f"ServerPort = 127.0.0.1:{self.sql_port}"
            elif stripped.startswith("ServerPort=8890"):
                line = f"ServerPort = 127.0.0.1:{self.http_port}"
            elif stripped.startswith("DirsAllowed="):
                line = f"DirsAllowed = ., {self.folder / 'load'}"
            elif stripped.startswith("ResultSetMaxRows="):
                line = f"ResultSetMaxRows = {self.max_rows}"
            lines.append(line)
        ini = self.folder / "virtuoso.ini"
        ini.write_text("\n".join(lines) + "\n", encoding="utf-8")
        started = subprocess.run(["virtuoso-t", "+configfile", str(ini), "+wait"], cwd=self.folder,
                                 capture_output=True, text=True, timeout=120)
        if started.returncode != 0:
            raise RuntimeError(f"virtuoso-t failed ({started.returncode}): {started.stderr.strip()[-500:]}")
        self.started = True
        wait_http(self.query_url + "?query=ASK%7B%7D", timeout=60)
        writer, password = self.writer
        self.isql("GRANT SPARQL_UPDATE TO \"SPARQL\"", f"USER_CREATE('{writer}', '{password}')",
                  f"GRANT SPARQL_UPDATE TO \"{writer}\"",
                  f"USER_SET_PASSWORD('dba', '{self.dba_password}')", "checkpoint", password="dba")
        return self

    def isql(self, *statements: str, password: str | None = None) -> str:
        """Run SQL statements; ``isql-vt exec=`` exits 0 even on errors, so stderr is read too."""
        sql = "; ".join(statements) + ";"
        done = subprocess.run(["isql-vt", f"127.0.0.1:{self.sql_port}", "dba", password or self.dba_password,
                               f"exec={sql}"], capture_output=True, text=True, timeout=120)
        problems = [ln for ln in (done.stdout + done.stderr).splitlines() if "*** Error" in ln]
        if done.returncode != 0 or problems:
            raise RuntimeError(f"isql-vt failed: {' | '.join(problems) or done.stderr.strip()}")
        return done.stdout

    def pid(self) -> int | None:
        lock = self.folder / "db" / "virtuoso.lck"
        try:
            for line in lock.read_text().splitlines():
                if line.startswith("VIRT_PID="):
                    return int(line.split("=", 1)[1])
        except (OSError, ValueError):
            return None
        return None

    def stop(self) -> None:
        pid = self.pid()
        if not self.started or pid is None:
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        for _ in range(300):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# --- a tiny misbehaving server ------------------------------------------------------------------------

class FixedStatusServer:
    """A real HTTP server on loopback that answers every request with one status (e.g. 500, 401, 404).

    ``requests`` counts what it received (method, path); ``headers`` are added to every answer.
    """

    def __init__(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
                 delay: float = 0.0) -> None:
        owner = self
        self.status = status
        self.delay = delay
        self.body = body
        self.headers = headers or {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                owner.requests.append((self.command, self.path, dict(self.headers)))
                if owner.delay:
                    time.sleep(owner.delay)
                self.send_response(owner.status)
                for key, value in owner.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Type", owner.headers.get("Content-Type", "text/plain; charset=utf-8"))
                self.send_header("Content-Length", str(len(owner.body)))
                self.end_headers()
                self.wfile.write(owner.body)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

            def log_message(self, *args) -> None:  # quiet
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FixedStatusServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
