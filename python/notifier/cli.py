"""The ``notifier`` command: a thin dispatcher; each subcommand lives in its own module.

A subcommand module defines ``add_arguments(parser)`` and ``run(args) -> int`` and is
imported only when its subcommand runs. A user error (a bad flag value, an unusable config or
template directory, a missing file) is one line on stderr and exit status 2, reported before
any work starts: a subcommand raises :class:`UsageError` (or argparse reports the flag).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

__all__ = ["DESCRIPTION", "UsageError", "main"]

DESCRIPTION = (
    "notifier sends exactly one notification (e-mail via Amazon SES) per event written to a "
    "DynamoDB table. Use these commands to check a routing config and its templates before "
    "you deploy, preview a template in a browser, run the whole pipeline locally, and operate "
    "a deployment: redrive failed records, inspect what happened to an event, invoke the "
    "handler on an event file."
)

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
    "check": (
        "notifier.check",
        "validate the routing config and render every template in every locale (for CI)",
    ),
}


class UsageError(ValueError):
    """A user error: the message (one line) names the file, key or flag; exit status 2."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage block): ``prog: error: ...``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {_one_line(message)} (see {self.prog} --help)\n")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def main(argv: Sequence[str] | None = None) -> int:
    from notifier import __version__

    parser = _Parser(prog="notifier", description=DESCRIPTION)
    parser.add_argument(
        "--version", action="version", version=f"notifier {__version__}", help="print the version"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            importlib.import_module(module_name).add_arguments(p)
    args = parser.parse_args(argv)
    module = importlib.import_module(SUBCOMMANDS[args.command][0])
    # Subcommands raise notifier.cli.UsageError; under ``python -m notifier.cli`` this module
    # is ``__main__``, a second copy with its own class: catch the importable one.
    usage_error = importlib.import_module("notifier.cli").UsageError
    try:
        return int(module.run(args))
    except usage_error as exc:
        print(f"notifier {args.command}: {_one_line(str(exc))}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
