"""The embedded AWS lab: moto's server plus what moto lacks.

``Lab`` (child process, context manager) is what the runner and the tests use;
``LabServer`` is the lab inside its own process. See ``docs/lab.md``.
"""

from ..exceptions import LabError
from .server import ACCOUNT_ID, ADMIN_USER, REGION, Lab, LabServer

__all__ = ["Lab", "LabServer", "LabError", "ACCOUNT_ID", "REGION", "ADMIN_USER"]
