"""Shared pytest fixtures. Each section belongs to one module's owner; keep them small."""

import pytest


# --- lab (runbook_lib.lab core) -------------------------------------------------------
@pytest.fixture(scope="session")
def lab():
    """An empty embedded lab (no seed) shared by the whole test session."""
    from runbook_lib.lab import Lab

    with Lab(seed=False) as running:
        yield running
