"""A TCP proxy in front of the test database that can cut every connection, like a server restart.

    with CuttableProxy(5432) as proxy:              # listens on 127.0.0.1:proxy.port
        ...
        proxy.cut(2.5)                              # drop all connections; refuse new ones for 2.5 s
"""

from __future__ import annotations

import socket
import threading
import time


class CuttableProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        self.port = 0
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.cuts = 0

    def __enter__(self) -> CuttableProxy:
        self._listen()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._drop_all()

    def cut(self, seconds: float) -> None:
        """Close the listener and every connection now; listen again on the same port after ``seconds``."""
        self.cuts += 1
        self._drop_all()
        time.sleep(seconds)
        if not self._stop.is_set():
            self._listen()

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _drop_all(self) -> None:
        with self._lock:
            socks = list(self._conns)
            self._conns.clear()
            listener, self._listener = self._listener, None
        for s in ([listener] if listener else []) + socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed by a cut
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
