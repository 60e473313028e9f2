"""Build step: the top-level ``notebooks/`` and ``policies/`` go into the package.

The repository keeps them at the top level (docs/DESIGN: a user opens ``notebooks/`` in
JupyterLab); the wheel carries them as ``runbook_lib/notebooks/`` and
``runbook_lib/policies/``, where :mod:`runbook_lib.resources` finds them with
``importlib.resources``. An editable install reads the top-level folders directly.
Everything else is declared in ``pyproject.toml``.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
#: top-level folder -> the files of it the package ships
SHIPPED = {"notebooks": "*.ipynb", "policies": "*.json"}


class BuildPyWithShippedFolders(build_py):
    """``build_py``, plus a copy of each :data:`SHIPPED` folder into the built package."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for folder, pattern in SHIPPED.items():
            files = sorted((ROOT / folder).glob(pattern))
            if not files:
                raise SystemExit(f"setup.py: no {pattern} in {ROOT / folder}: the package would ship without them")
            target = Path(self.build_lib) / "runbook_lib" / folder
            target.mkdir(parents=True, exist_ok=True)
            for source in files:
                shutil.copy2(source, target / source.name)


setup(cmdclass={"build_py": BuildPyWithShippedFolders})
