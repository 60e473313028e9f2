"""One botocore data loader for the lab process: each model and endpoint file parsed once.

Every botocore session has its own loader, and a loader parses each JSON file it is asked
for (a service model is a few hundred kilobytes to a few megabytes). The lab process had
three sessions reading the same files: the operation resolver (:mod:`.operations`), the
seed's clients (:mod:`.seed`) and moto's region lists. Sessions made by
:func:`botocore_session` keep their own credentials, configuration and event hooks and share
only the parsed data, which is read from the installed botocore and never changes while
the lab runs.
"""

from __future__ import annotations

import threading

__all__ = ["botocore_loader", "botocore_session"]

_lock = threading.Lock()
_loader: list = []


def botocore_loader():
    """The one botocore data loader of this process."""
    with _lock:
        if not _loader:
            from botocore.loaders import create_loader

            _loader.append(create_loader())
        return _loader[0]


def botocore_session():
    """A new botocore session that reads its data through :func:`botocore_loader`.

    Examples
    --------
    >>> botocore_session().get_service_model("sts").service_name
    'sts'
    """
    import botocore.session

    session = botocore.session.Session()
    session.register_component("data_loader", botocore_loader())
    return session
