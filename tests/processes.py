"""Waiting on processes the tests did not start themselves (kernels, the fork server's children)."""

from __future__ import annotations

import os
import time


def gone(pid: int, within: float = 10.0) -> bool:
    """True once no process ``pid`` exists, waiting up to ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False
