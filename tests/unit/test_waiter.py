"""The waiter (registry/waiter.py): what it does at each turn, its loop
against a stand-in engine API on a unix socket, and that its source runs
on its own (standard library only, as `python -c` runs it)."""

import ast
import contextlib
import http.server
import json
import os
import socket
import socketserver
import subprocess
import sys
import threading
import time

import pytest

from ansible.module_utils.buildset_registry.registry import upstream, waiter


@pytest.mark.parametrize(
    "state, upstream_ok, serving, action",
    [
        (None, True, False, "exit"),
        ("exited", False, True, "exit"),
        ("exited", False, False, "wait"),
        ("restarting", False, False, "wait"),
        ("exited", True, False, "start"),
        ("created", True, False, "start"),
        ("running", True, False, "restart"),
        ("restarting", True, False, "restart"),
    ],
)
def test_step(state, upstream_ok, serving, action):
    assert waiter.step(state, upstream_ok, serving) == action


def test_the_source_imports_the_standard_library_only():
    tree = ast.parse(upstream.inspect_source(waiter))
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not any(name.startswith("ansible") for name in names), names


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@contextlib.contextmanager
def fake_engine(path, states):
    """An engine API on a unix socket: GET /containers/ID/json answers the
    next of states (None: 404); POSTs are recorded."""
    posts = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def address_string(self):
            return "unix"

        def _answer(self, status, body=b""):
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):  # noqa: N802
            state = states.pop(0) if len(states) > 1 else states[0]
            if state is None:
                self._answer(404, b'{"message": "no such container"}')
            else:
                self._answer(200, json.dumps({"State": {"Status": state}}).encode())

        def do_POST(self):  # noqa: N802
            posts.append(self.path)
            self._answer(204)

        def log_message(self, *args):
            pass

    server = _UnixServer(path, Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield posts
    finally:
        server.shutdown()
        server.server_close()


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_watch_waits_for_the_upstream_then_starts_the_proxy_and_exits_when_it_is_gone(tmp_path):
    engine = str(tmp_path / "engine.sock")
    with contextlib.ExitStack() as stack:
        posts = stack.enter_context(fake_engine(engine, ["exited", "exited", "exited", None]))
        listener = stack.enter_context(socket.socket())
        listener.bind(("127.0.0.1", 0))
        url = "http://127.0.0.1:%d" % listener.getsockname()[1]
        slept = []

        def sleep(seconds):
            slept.append(seconds)
            if len(slept) == 1:
                # The upstream comes back: an HTTP server on that port.
                listener.close()
                server = http.server.ThreadingHTTPServer(("127.0.0.1", int(url.rsplit(":", 1)[1])), Answer)
                threading.Thread(target=server.serve_forever, daemon=True).start()
                stack.callback(server.server_close)
                stack.callback(server.shutdown)

        why = waiter.watch(engine, "cid", "@i24-unit-no-proxy", url, interval=0.01, lifetime=30, sleep=sleep)
    assert why == "gone"
    assert posts == ["/containers/cid/start", "/containers/cid/start"]
    assert slept == [0.01, 0.02, 0.04]


class Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.send_response(401)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_launched_waiter_runs_detached_and_exits_when_the_container_is_gone(tmp_path):
    engine = str(tmp_path / "engine.sock")
    with fake_engine(engine, [None]):
        pid = waiter.launch(
            sys.executable, upstream.inspect_source(waiter), engine, "cid-unit", "@x", "http://127.0.0.1:9"
        )
        assert os.getsid(pid) == pid
        deadline = time.monotonic() + 10
        while os.waitpid(pid, os.WNOHANG) == (0, 0) and time.monotonic() < deadline:
            time.sleep(0.05)
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def test_is_waiting_reads_command_lines(tmp_path):
    for pid, args in (("10", [waiter.MARK, "/s", "cid-a"]), ("11", ["python", "cid-b"]), ("x", [])):
        (tmp_path / pid).mkdir()
        (tmp_path / pid / "cmdline").write_bytes(b"\0".join(a.encode() for a in ["python", "-c", "..."] + args) + b"\0")
    assert waiter.is_waiting("cid-a", str(tmp_path))
    assert not waiter.is_waiting("cid-b", str(tmp_path))
    assert not waiter.is_waiting("cid-a", str(tmp_path / "missing"))


def test_the_bootstrap_runs_the_source_from_stdin():
    source = "import sys\nif __name__ == '__main__':\n    print(sys.argv[1:])\n"
    out = subprocess.run([sys.executable, "-c", waiter.BOOTSTRAP, waiter.MARK, "a"], input=source, text=True,
                         capture_output=True, check=True)  # fmt: skip
    assert out.stdout.strip() == "['%s', 'a']" % waiter.MARK


def test_watch_outlives_an_engine_that_does_not_answer(tmp_path):
    slept = []
    why = waiter.watch(str(tmp_path / "no-engine.sock"), "cid", "@x", "http://127.0.0.1:9", interval=0.01,
                       lifetime=0.3, sleep=lambda s: (slept.append(s), time.sleep(0.05)))  # fmt: skip
    assert why == "lifetime" and len(slept) >= 2
