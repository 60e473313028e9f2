"""``python -m runbook_lib.lab serve [--port N] [--seed/--no-seed] [--enforce-iam]``.

Also the module the ``runbook lab`` subcommand wires in: :func:`add_arguments` and
:func:`main` (same options, no ``serve`` word).
"""

from __future__ import annotations

import argparse

from .server import add_arguments, main

__all__ = ["add_arguments", "main"]


def _cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runbook_lib.lab",
                                     description="The embedded AWS lab (moto + what moto lacks).")
    commands = parser.add_subparsers(dest="command", required=True)
    add_arguments(commands.add_parser("serve", help="serve the lab in the foreground"))
    return main(parser.parse_args(argv))


if __name__ == "__main__":
    from ..quick_exit import exit_now

    exit_now(_cli())  # Lab.stop() waits for this process: no teardown of moto's modules (about 1 s)
