"""Lambda handlers the runbook deploys; see :mod:`runbook_lib.handlers.reference_handler`.

The handler modules run inside Lambda, so they use only the standard library and boto3
and never import the rest of ``runbook_lib``.
"""

from pathlib import Path

#: Folder holding the handler sources, read by the package builder in ``functions.py``.
HANDLERS_DIR = Path(__file__).resolve().parent
REFERENCE_MODULE = "reference_handler"
REFERENCE_HANDLER = f"{REFERENCE_MODULE}.handler"
#: File packaged next to the handler: the secret's ARN and region (never a value).
PACKAGE_CONFIG_FILE = "runbook_config.json"
