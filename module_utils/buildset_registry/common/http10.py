# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""One HTTP/1.0 GET, standard library only: to an API on a unix socket
(the engine, dockerd, a registry on its abstract socket) or over TLS to a
port of this node (the front).

HTTP/1.0 makes the server close the connection after its answer, so the
body is everything until then: no keep-alive, no chunked encoding (Go's
servers, the engines, registry:2 and Caddy, answer such a request that
way). The standard library's http.client would first import the email
package: about 13 ms of every run of a module, more than the requests.
"""

from __future__ import annotations

import socket

# An answer larger than this is no answer these modules expect.
MAX_ANSWER = 16 * 1024 * 1024


def unix_address(name):
    """The address to connect to for a socket path, or "@NAME" for an abstract one."""
    return "\0" + name[1:] if name.startswith("@") else name


def _connect(unix, port, context, timeout):
    if unix:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(unix_address(unix))
        except OSError:
            sock.close()
            raise
        return sock
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    # Without it the request waits for the ACK of the client's last
    # handshake message, which Linux delays by 40 ms (Nagle's algorithm):
    # measured 41-45 ms per request against 0.4-0.6 ms with it.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        return context.wrap_socket(sock, server_hostname="127.0.0.1")
    except OSError:  # ssl.SSLError is one
        sock.close()
        raise


def parse(answer):
    """(status, body) of a whole HTTP answer; ValueError when it is none."""
    head, sep, body = answer.partition(b"\r\n\r\n")
    status = head.split(None, 2)[1:2]
    if not head.startswith(b"HTTP/") or not sep or not status or not status[0].isdigit():
        raise ValueError("not an HTTP answer: %r" % answer[:60])
    if b"transfer-encoding: chunked" in head.lower():
        raise ValueError("a chunked answer to an HTTP/1.0 request")
    return int(status[0]), body


def get(path, unix=None, port=None, context=None, headers=None, timeout=5.0):
    """(status, body) of GET path: on the unix socket `unix` ("@NAME" for
    an abstract one), else over TLS (`context`) to 127.0.0.1:`port`.
    Raises OSError when the server cannot be reached or does not answer in
    time, ValueError when what it sends is no HTTP answer."""
    host = "localhost" if unix else "127.0.0.1:%d" % port
    lines = ["GET %s HTTP/1.0" % path, "Host: " + host]
    lines += ["%s: %s" % item for item in (headers or {}).items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    with _connect(unix, port, context, timeout) as sock:
        sock.sendall(request)
        chunks, size = [], 0
        while size <= MAX_ANSWER:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
            size += len(data)
    return parse(b"".join(chunks))
