"""Shared pytest fixtures. Each section belongs to one module's owner; keep them small."""

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

# Bytecode is cached, as on a user's machine, even where the shell or image sets PYTHONDONTWRITEBYTECODE:
# without the cache every xdist worker rewrites the asserts of all ~130 test modules (9 s of CPU each on
# this machine) and every process the suite starts (labs, kernels, fork servers, function runtimes)
# compiles runbook_lib from source again. Set here, before pytest imports a test module.
sys.dont_write_bytecode = False
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


def free_port() -> int:
    """A loopback port nothing listens on (bound once, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- signing key (runbook_lib.signing): tests never touch the user's own config folder ----
@pytest.fixture(autouse=True, scope="session")
def _private_config_folder(tmp_path_factory):
    """The per-user signing key is created on first use, here in a folder of the session's."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config")))
        # the scanner's compiled-pattern cache (runbook_lib.pattern_cache) too
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        patch.delenv("RUNBOOK_SIGNING_KEY_FILE", raising=False)
        yield


# --- moto_endpoint (runner tests: a real moto server for notebooks in another process) --
@pytest.fixture(scope="module")
def moto_endpoint():
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


# --- lab (runbook_lib.lab core) -------------------------------------------------------
@pytest.fixture(scope="session")
def lab():
    """An empty embedded lab (no seed) shared by the whole test session."""
    from runbook_lib.lab import Lab

    with Lab(seed=False) as running:
        yield running


@pytest.fixture
def enforcing(lab):
    """The shared lab with IAM enforcement on for one test."""
    lab.set_enforce_iam(True)
    try:
        yield lab
    finally:
        lab.set_enforce_iam(False)


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


# --- chromium (render, archive: exported HTML opened in a real browser) ---------------------
@pytest.fixture(scope="session")
def chromium(tmp_path_factory):
    """``dump_dom(path) -> str``: the DOM of a local page after headless Chromium loaded and ran it."""
    binary = next(filter(None, (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome"))), None)
    if binary is None:
        pytest.skip("Chromium is not installed (apt-get install -y chromium): browser test skipped")

    def dump_dom(path) -> str:
        profile = tmp_path_factory.mktemp("chromium-profile")
        done = subprocess.run(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--virtual-time-budget=5000", "--dump-dom", Path(path).resolve().as_uri()],
            capture_output=True, text=True, timeout=180)
        assert done.returncode == 0 and "<html" in done.stdout, done.stderr[-2000:]
        return done.stdout
    return dump_dom


# --- scheduling (make test: pytest-xdist, --dist loadgroup) -----------------------------------------
#: The modules with the most seconds per test run (docs/testing.md, "Where the suite's seconds go"),
#: heaviest first. With ``--no-loadscope-reorder`` (the Makefile) xdist hands work out in collection
#: order, so these start first and the many short tests fill the workers' ends, instead of a 50 s test
#: or a 200 s group starting when the others are nearly done. Order only: no test is added or dropped.
HEAVIEST_FIRST = ("test_implementation_lab.py", "test_notebooks.py", "test_faults.py", "test_runner.py",
                  "test_archive.py", "test_audit.py", "test_implementation.py", "test_policies.py",
                  "test_packaging.py", "test_closeout.py", "test_kernels.py", "test_kernel_fork.py",
                  "test_bad_input.py")


#: Shared fixtures whose tests are spread over the workers all the same: each test is long (a whole
#: `runbook run` and backout) and leaves the lab as it found it (its functions are deleted after it), so a
#: lab per worker (~4 s of CPU) costs less than ~200 s of tests queued behind one another on one worker.
SPREAD = {("test_implementation_lab", "iam_lab")}


def _own_module_fixtures(item) -> list[str]:
    """The module-scoped fixtures of the item's own module that the item uses (its closure), but :data:`SPREAD`."""
    module = item.nodeid.split("::", 1)[0]
    stem = module.rsplit("/", 1)[-1].removesuffix(".py")
    names = []
    for name in item.fixturenames:
        defs = item._fixtureinfo.name2fixturedefs.get(name)  # no public API gives a fixture's scope here
        if defs and defs[-1].scope == "module" and defs[-1].baseid == module and (stem, name) not in SPREAD:
            names.append(name)
    return sorted(names)


@pytest.hookimpl(tryfirst=True)  # before xdist reads the xdist_group marks (its hook adds @group to node ids)
def pytest_collection_modifyitems(config, items):
    """Tests sharing a module's own module-scoped fixture (a lab, a whole run) run on one worker.

    Without a group, ``--dist loadgroup`` sends a module's tests to whichever worker is free, and
    every worker that gets one sets the module's lab or run up again (a seeded lab: ~4 s of CPU,
    a stand-in run: ~10 s). A test that already carries an ``xdist_group`` mark keeps it.
    """
    for item in items:
        shared = _own_module_fixtures(item)
        if shared and item.get_closest_marker("xdist_group") is None:
            stem = item.nodeid.split("::", 1)[0].rsplit("/", 1)[-1].removesuffix(".py")
            item.add_marker(pytest.mark.xdist_group(f"{stem}.{'+'.join(shared)}"))
    rank = {name: i for i, name in enumerate(HEAVIEST_FIRST)}
    position = {id(item): i for i, item in enumerate(items)}
    items.sort(key=lambda item: (rank.get(item.nodeid.split("::", 1)[0].rsplit("/", 1)[-1], len(rank)),
                                 position[id(item)]))
