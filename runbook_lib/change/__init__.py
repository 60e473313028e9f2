"""The change engine shared by implementation, backout and close-out.

=====================  =============================================================
``context``            :class:`ChangeContext`: clients, the function, its snapshot, the
                       moved variables, the ledger (typed records)
``engine``             :class:`ChangeSequence`: the apply gate, locks, journal, step runner,
                       assertions as catalog checks
``locks``              the ledger lock and the function's lock tag; :func:`unlock` for a dead run
``intents``            intents before creates, write-ahead records, :class:`ReconcileStep`
``finders``            what an interrupted create left, found by token and tag
``access_keys``        hardcoded access keys: find, owner, deactivate, re-activate
``unlock``             the ``runbook unlock RUN_DIR`` subcommand
=====================  =============================================================
"""

from .context import ChangeContext
from .engine import ChangeSequence

__all__ = ["ChangeContext", "ChangeSequence"]
