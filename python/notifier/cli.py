"""The ``notifier`` command: a thin dispatcher; each subcommand lives in its own module.

A subcommand module defines ``add_arguments(parser)`` and ``run(args) -> int`` and is
imported only when its subcommand runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

#: subcommand -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": (
        "notifier.local.demo",
        "run the whole pipeline on an embedded AWS (moto) with an emulated Lambda ESM",
    ),
    "preview": (
        "notifier.preview",
        "render one template with sample data into an HTML page for a browser",
    ),
    "redrive": (
        "notifier.ops.redrive",
        "run dead-lettered records (failure queue, ESM failure ranges) through the pipeline again",
    ),
    "inspect": (
        "notifier.ops.inspect",
        "show the ledger entries of an event id, dedup key or ledger key",
    ),
    "invoke": (
        "notifier.ops.invoke",
        "run the real handler locally on an event file (like sam local invoke -e)",
    ),
    "generate-event": (
        "notifier.ops.events",
        "write DynamoDB stream events in the event contract (input for invoke)",
    ),
    "local": (
        "notifier.ops.localup",
        "local up: keep a provisioned embedded AWS (moto) running until Ctrl-C",
    ),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="notifier", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            importlib.import_module(module_name).add_arguments(p)
    args = parser.parse_args(argv)
    module = importlib.import_module(SUBCOMMANDS[args.command][0])
    return int(module.run(args))


if __name__ == "__main__":
    sys.exit(main())
