"""A trivially fast stand-in server: it answers every request with one canned 401 and closes.

``python -m bench.canned_server --host 127.0.0.1 --port N [app]`` (the app argument is
ignored; it lets `conformance.servers.run_server` start it like any variant). It parses nothing
but the blank line that ends a request head, so the load client can be measured against a
server that costs almost nothing: the client's own ceiling.
"""

from __future__ import annotations

import argparse
import contextlib
import select
import signal
import socket
import sys
from types import FrameType

BODY = b'{"error":"unauthorized"}'
RESPONSE = (
    b"HTTP/1.1 401 Unauthorized\r\n"
    b'www-authenticate: Bearer realm="api"\r\n'
    b"content-type: application/json\r\n"
    b"content-length: " + str(len(BODY)).encode("ascii") + b"\r\n"
    b"connection: close\r\n\r\n" + BODY
)


def serve(host: str, port: int) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(4096)
    listener.setblocking(False)
    poll = select.epoll()
    poll.register(listener.fileno(), select.EPOLLIN)
    pending: dict[int, tuple[socket.socket, bytearray]] = {}
    running = True

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    while running:
        for fd, _ in poll.poll(0.5):
            if fd == listener.fileno():
                while True:
                    try:
                        sock, _ = listener.accept()
                    except BlockingIOError:
                        break
                    sock.setblocking(False)
                    pending[sock.fileno()] = (sock, bytearray())
                    poll.register(sock.fileno(), select.EPOLLIN)
                continue
            sock, buffer = pending[fd]
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            buffer += data
            if data and b"\r\n\r\n" not in buffer:
                continue
            if data:
                with contextlib.suppress(OSError):
                    sock.send(RESPONSE)
            del pending[fd]
            sock.close()
    poll.close()
    listener.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("app", nargs="?", help="ignored")
    args = parser.parse_args(argv)
    serve(args.host, args.port)


if __name__ == "__main__":
    main(sys.argv[1:])
