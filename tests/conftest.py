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


# --- world (moto in-process: implementation, backout, residue, close-out) ---------------
@pytest.fixture()
def world(tmp_path, monkeypatch):
    """The moto world of ``moto_world.build_world``, inside ``mock_aws``.

    moto's Code.Location cannot be downloaded in-process, so a version's package is read
    from moto's backend instead.
    """
    from moto import mock_aws

    from moto_world import build_world, moto_version_code
    from runbook_lib import functions

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setattr(functions, "version_code", lambda lam, name, version: moto_version_code(name, version))
    with mock_aws():
        yield build_world(tmp_path)
