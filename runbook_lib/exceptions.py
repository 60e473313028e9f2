"""Errors the runbook raises.

One base, :class:`RunbookError`, and a few precise subclasses that carry structured
fields, so a notebook, the CLI and the tests can each say what went wrong without
parsing messages. Every message is one line, names what is wrong and what to do,
and never contains a secret value (callers pass names, ARNs and redacted previews).

Exit codes used by the CLI: :class:`InputError`, :class:`AwsCallError`,
:class:`ChangeRefused`, :class:`LabError` and :class:`NotebookError` mean the run
could not proceed (exit 2); a failed check is not an exception, it is a
:class:`~runbook_lib.checks.Check` with status FAIL (exit 1).
"""

from __future__ import annotations


class RunbookError(Exception):
    """Base of every error raised on purpose by runbook_lib."""

    exit_code = 2

    def __init__(self, message: str):
        # A single line keeps CLI output and notebook tracebacks readable.
        super().__init__(" ".join(str(message).split()))

    @property
    def message(self) -> str:
        return self.args[0]


class InputError(RunbookError):
    """A parameter or file given by the operator is wrong; nothing was changed.

    Parameters
    ----------
    parameter:
        Name of the offending parameter (``function_name``, ``code_path``, ...).
    message:
        What is wrong and what to do, one line.
    """

    def __init__(self, parameter: str, message: str):
        self.parameter = parameter
        super().__init__(f"{parameter}: {message}")


class AwsCallError(RunbookError):
    """An AWS API call failed, named with the call, the resource and the permission.

    Examples
    --------
    >>> str(AwsCallError("CreatePolicy", "LambdaSecretsManagerPolicy-orders", "AccessDenied",
    ...                  permission="iam:CreatePolicy"))
    'CreatePolicy on LambdaSecretsManagerPolicy-orders failed: AccessDenied (needs iam:CreatePolicy)'
    """

    def __init__(self, operation: str, resource: str, code: str, detail: str = "",
                 permission: str | None = None):
        self.operation = operation
        self.resource = resource
        self.code = code
        self.permission = permission
        text = f"{operation} on {resource} failed: {code}"
        if permission:
            text += f" (needs {permission})"
        if detail:
            text += f" - {detail}"
        super().__init__(text)

    @property
    def access_denied(self) -> bool:
        return is_access_denied_code(self.code)


class ChangeRefused(RunbookError):
    """A change was refused to protect something: ownership, drift, a lock, no ticket."""

    def __init__(self, resource: str, reason: str):
        self.resource = resource
        self.reason = reason
        super().__init__(f"{resource}: {reason}")


class LabError(RunbookError):
    """The embedded lab could not start, or stopped while a run needed it."""


class NotebookError(RunbookError):
    """A notebook could not finish (an exception in a cell, a dead kernel, a timeout)."""

    def __init__(self, notebook: str, message: str, cell: int | None = None):
        self.notebook = notebook
        self.cell = cell
        where = f"{notebook} cell {cell}" if cell is not None else notebook
        super().__init__(f"{where}: {message}")


_ACCESS_DENIED_CODES = {
    "AccessDenied", "AccessDeniedException", "UnauthorizedOperation",
    "UnrecognizedClientException", "AuthorizationError", "Forbidden",
}


def is_access_denied_code(code: str) -> bool:
    return code in _ACCESS_DENIED_CODES
