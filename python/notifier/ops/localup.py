"""``notifier local up``: a provisioned embedded AWS (moto) that stays up until Ctrl-C/SIGTERM.

Prints the endpoint and the environment to export (``eval "$(notifier local up ...)"`` does
not work: it keeps running; copy the lines, or read them from the first lines of its output),
then serves until interrupted, for curl, ``notifier invoke`` and container tests.
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
import threading
from typing import Any

from notifier.ops._common import UsageError, guarded, quiet_moto

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    up = sub.add_parser("up", help="start, provision and keep running until Ctrl-C/SIGTERM")
    up.add_argument("--port", type=int, default=4566, help="port on 127.0.0.1 (default 4566)")
    up.add_argument(
        "--seed-events",
        type=int,
        default=0,
        metavar="N",
        help="also write N sample events into the source table",
    )


def _check_port(port: int) -> None:
    if not 0 < port < 65536:
        raise UsageError(f"--port {port}: not a port number")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError as exc:
            raise UsageError(f"--port {port}: {exc.strerror or exc}") from exc


def run(args: argparse.Namespace) -> int:
    def body() -> int:
        from notifier.local.moto_server import LOCAL_CREDENTIALS, MotoServer, local_aws_env
        from notifier.local.provision import provision, seed_events

        _check_port(args.port)
        if args.seed_events < 0:
            raise UsageError("--seed-events must not be negative")
        quiet_moto()
        stop = threading.Event()

        def on_signal(signum: int, frame: Any) -> None:
            stop.set()

        previous = signal.signal(signal.SIGTERM, on_signal)
        try:
            with MotoServer(port=args.port) as server, local_aws_env(server.endpoint_url):
                res = provision(server.endpoint_url)
                if args.seed_events:
                    seed_events(args.seed_events, endpoint_url=server.endpoint_url)
                env = {
                    **LOCAL_CREDENTIALS,
                    "AWS_ENDPOINT_URL": server.endpoint_url,
                    "NOTIFIER_LEDGER_TABLE": res.ledger_table,
                    "NOTIFIER_FAILURE_QUEUE_URL": res.failure_queue_url,
                }
                print(f"# notifier local: moto at {server.endpoint_url}")
                for k, v in env.items():
                    print(f"export {k}={v}")
                print(f"# source table {res.events_table}, stream {res.stream_arn}")
                print(f"# ESM on-failure queue {res.esm_failure_queue_url}")
                print("# ready; Ctrl-C or SIGTERM stops it", flush=True)
                try:
                    while not stop.wait(0.5):
                        pass
                except KeyboardInterrupt:
                    pass
            print("# stopped", file=sys.stderr)
            return 0
        finally:
            signal.signal(signal.SIGTERM, previous)

    return guarded("local up", body)
