"""Shared pytest fixtures. Each section belongs to one module's owner; keep them small."""

import pytest


# --- lab (runbook_lib.lab core) -------------------------------------------------------
@pytest.fixture(scope="session")
def lab():
    """An empty embedded lab (no seed) shared by the whole test session."""
    from runbook_lib.lab import Lab

    with Lab(seed=False) as running:
        yield running


# --- seeded_lab (runbook_lib.lab runtime + seed) ----------------------------------------
@pytest.fixture(scope="session")
def seeded_lab():
    """A lab with the seeded insecure baseline, shared by the whole test session.

    Treat it as read-only: tests that change the baseline start their own ``Lab``.
    """
    from runbook_lib.lab import Lab

    with Lab(seed=True) as running:
        yield running
