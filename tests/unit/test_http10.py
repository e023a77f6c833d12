"""common/http10: one HTTP/1.0 GET, on a unix socket (a path or an abstract
name) and over TLS, against servers on this machine that answer as Go's
servers answer an HTTP/1.0 request (the answer, then the connection closed)."""

import os
import socket
import ssl
import threading

import pytest

from ansible.module_utils.buildset_registry.common import http10
from ansible.module_utils.buildset_registry.common.layout import layout
from ansible.module_utils.buildset_registry.registry import cert

OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{"ok": true}'


def test_parse_gives_the_status_and_the_body():
    assert http10.parse(OK) == (200, b'{"ok": true}')
    assert http10.parse(b"HTTP/1.0 404 Not Found\r\n\r\n") == (404, b"")


@pytest.mark.parametrize(
    "answer, says",
    [
        (b"", "not an HTTP answer"),
        (b"SSH-2.0-OpenSSH_9.2\r\n", "not an HTTP answer"),
        (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain", "not an HTTP answer"),  # cut before the body
        (b"HTTP/1.1 OK\r\n\r\n", "not an HTTP answer"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "chunked"),
    ],
)
def test_parse_refuses_what_is_no_whole_answer(answer, says):
    with pytest.raises(ValueError, match=says):
        http10.parse(answer)


class Server:
    """One thread answering each connection with `answer` after reading the
    request; records the requests."""

    def __init__(self, sock, answer, wrap=None):
        self.sock, self.answer, self.wrap = sock, answer, wrap
        self.requests = []
        sock.listen(4)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                self.handle(self.wrap(conn) if self.wrap else conn)
            except OSError:  # a client that refused our certificate
                conn.close()

    def handle(self, conn):
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
            self.requests.append(data)
            conn.sendall(self.answer)

    def close(self):
        self.sock.close()


@pytest.fixture
def unix_server(tmp_path):
    servers = []

    def start(answer, abstract=False):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        name = "@http10-test-%d-%d" % (os.getpid(), len(servers)) if abstract else str(tmp_path / "api.sock")
        sock.bind(http10.unix_address(name))
        servers.append(Server(sock, answer))
        return name, servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_get_on_a_unix_socket_sends_an_http10_request_and_reads_until_close(unix_server, abstract):
    name, server = unix_server(OK, abstract=abstract)
    assert http10.get("/v2/?a=1", unix=name, headers={"Authorization": "Bearer t"}) == (200, b'{"ok": true}')
    request = server.requests[0].decode()
    assert request.startswith("GET /v2/?a=1 HTTP/1.0\r\n")
    assert "\r\nHost: localhost\r\n" in request
    assert "\r\nAuthorization: Bearer t\r\n" in request


def test_a_server_that_closes_without_answering_is_a_value_error(unix_server):
    name, _ = unix_server(b"")
    with pytest.raises(ValueError, match="not an HTTP answer"):
        http10.get("/_ping", unix=name)


def test_nothing_listening_is_an_os_error(tmp_path):
    with pytest.raises(OSError):
        http10.get("/_ping", unix=str(tmp_path / "none.sock"))
    with pytest.raises(ConnectionRefusedError):
        http10.get("/_ping", unix="@http10-test-nobody-%d" % os.getpid())


def test_a_server_that_does_not_answer_times_out(tmp_path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(tmp_path / "mute.sock"))
    sock.listen(1)
    try:
        with pytest.raises(socket.timeout):
            http10.get("/", unix=str(tmp_path / "mute.sock"), timeout=0.2)
    finally:
        sock.close()


def test_get_over_tls_checks_the_certificate_against_the_ca(root):
    cert.ensure(dict(root=root, host="127.0.0.1", extra_names=[], valid_days=30, renew_days=5), check_mode=False)
    paths = layout(root)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(paths["cert"], paths["key"])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = Server(sock, OK, wrap=lambda c: server_context.wrap_socket(c, server_side=True))
    try:
        trusting = ssl.create_default_context(cafile=paths["cert"])
        assert http10.get("/v2/", port=port, context=trusting) == (200, b'{"ok": true}')
        assert "\r\nHost: 127.0.0.1:%d\r\n" % port in server.requests[0].decode()
        # The request is not held back until the handshake's last ACK (Nagle).
        with http10._connect(None, port, trusting, 5.0) as sock:
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        with pytest.raises(ssl.SSLCertVerificationError):
            http10.get("/v2/", port=port, context=ssl.create_default_context(cafile=None, capath="/nonexistent"))
    finally:
        server.close()
