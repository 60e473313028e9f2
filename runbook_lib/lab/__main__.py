"""``python -m runbook_lib.lab serve [--port N] [--seed/--no-seed] [--enforce-iam] ...``.

Also the module the ``runbook lab`` subcommand wires in: :func:`add_arguments` and
:func:`main` (same options, no ``serve`` word).
"""

from __future__ import annotations

import argparse
import sys

from .function_states import DEFAULT_SECONDS, seconds_argument
from .server import serve

__all__ = ["add_arguments", "main"]


def add_arguments(parser) -> None:
    """Options of ``runbook lab`` and ``python -m runbook_lib.lab serve``."""
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--host", default="127.0.0.1", help=argparse.SUPPRESS)
    parser.add_argument("--seed", dest="seed", action="store_true", default=True,
                        help="create the insecure baseline the runbook fixes (default)")
    parser.add_argument("--no-seed", dest="seed", action="store_false", help="start empty")
    parser.add_argument("--enforce-iam", action="store_true",
                        help="authorise IAM users and role sessions with resource-level policies")
    parser.add_argument("--function-state-seconds", type=seconds_argument, default=None, metavar="S",
                        help="how long a function stays Pending after CreateFunction and InProgress after "
                             f"an update (0-60, default {DEFAULT_SECONDS})")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    parser.add_argument("--ready-file", default="", help=argparse.SUPPRESS)
    parser.add_argument("--parent-pid", type=int, default=0, help=argparse.SUPPRESS)


def main(args) -> int:
    """Entry point for ``runbook lab``: serve in the foreground, return the exit code."""
    return serve(args)


def _cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runbook_lib.lab",
                                     description="The embedded AWS lab (moto + what moto lacks).")
    commands = parser.add_subparsers(dest="command", required=True)
    add_arguments(commands.add_parser("serve", help="serve the lab in the foreground"))
    return main(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(_cli())
