"""Start the server in a background thread (tests) or in the foreground (CLI)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading

import yaml
from aiohttp import web

from .server import SimServer


def kubeconfig_dict(url: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "simcluster", "cluster": {"server": url}}],
        "users": [{"name": "simcluster", "user": {"token": "simcluster"}}],
        "contexts": [
            {
                "name": "simcluster",
                "context": {"cluster": "simcluster", "user": "simcluster", "namespace": "default"},
            }
        ],
        "current-context": "simcluster",
        "preferences": {},
    }


def write_kubeconfig(path: str, url: str) -> str:
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        yaml.safe_dump(kubeconfig_dict(url), fh, sort_keys=False)
    os.replace(tmp, path)
    return path


def bind(port: int = 0, host: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(512)
    sock.setblocking(False)
    return sock


class Running:
    """A server on its own event loop in a daemon thread."""

    def __init__(self, server: SimServer, port: int = 0):
        self.server = server
        self.sock = bind(port)
        self.port = self.sock.getsockname()[1]
        server.port = self.port
        self.url = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        server.loop = self.loop
        self._ready = threading.Event()
        self._runner: web.AppRunner | None = None
        self.thread = threading.Thread(target=self._run, name="simcluster", daemon=True)
        self.thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("simcluster did not start")

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def start():
            self._runner = web.AppRunner(
                self.server.build_app(), access_log=None, shutdown_timeout=1
            )
            await self._runner.setup()
            await web.SockSite(self._runner, self.sock).start()

        self.loop.run_until_complete(start())
        self._ready.set()
        self.loop.run_forever()

    def call(self, coro, timeout: float = 60):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.server.store.drop_watches()
        if self._runner is not None:
            with contextlib.suppress(Exception):
                self.call(self._runner.cleanup(), 10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
