"""python -m simcluster --scenario NAME --port PORT --kubeconfig PATH [--seed N] [--churn EPS]"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import resource
import signal
import sys
import time

from aiohttp import web

from .runtime import bind, write_kubeconfig
from .scenarios import SCENARIOS
from .server import SimServer


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="simcluster", description=__doc__)
    ap.add_argument("--scenario", default="demo", choices=SCENARIOS)
    ap.add_argument("--port", type=int, default=8001)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--kubeconfig", default=os.path.expanduser("~/.kube/simcluster.yaml"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--churn", type=float, default=0.0, help="events per second of live traffic")
    ap.add_argument("--bookmark-interval", type=float, default=5.0)
    ap.add_argument(
        "--event-log",
        type=int,
        default=100_000,
        help="watch history kept (events); older resourceVersions get 410 Expired",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s simcluster %(message)s")
    log = logging.getLogger("simcluster")

    server = SimServer(bookmark_interval=args.bookmark_interval, log_size=args.event_log)
    sock = bind(args.port, args.host)
    server.port = sock.getsockname()[1]
    url = f"http://{args.host}:{server.port}"
    t0 = time.monotonic()
    server.reset(args.scenario, args.seed)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    counts = server.store.counts()
    log.info(
        "scenario %s (seed %s) loaded in %.1fs, peak RSS %.0f MB: %s",
        args.scenario,
        args.seed,
        time.monotonic() - t0,
        rss,
        ", ".join(f"{k}={v}" for k, v in counts.items() if v),
    )
    write_kubeconfig(args.kubeconfig, url)

    async def run() -> None:
        runner = web.AppRunner(server.build_app(), access_log=None, shutdown_timeout=1)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        log.info("serving %s; kubeconfig %s (context simcluster)", url, args.kubeconfig)
        print(f"simcluster serving {url} kubeconfig={args.kubeconfig}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        server.loop = loop
        if args.churn > 0:
            server.start_churn(args.churn, args.seed)
        await stop.wait()
        server.stop_churn()
        server.store.drop_watches()
        await runner.cleanup()

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
