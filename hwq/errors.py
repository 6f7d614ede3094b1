"""Errors that the CLI turns into one-line messages and exit codes.

Exit codes follow the project convention: 0 success, 1 a valid request that cannot be
satisfied (e.g. a budget below the cheapest plan), 2 bad usage (unknown model, malformed
budget, invalid accelerator spec).
"""


class HwqError(Exception):
    """Base class: ``str(err)`` is the one-line message shown to the user."""

    exit_code = 1


class UsageError(HwqError):
    """Bad input from the user: the message names the problem and the fix (exit code 2)."""

    exit_code = 2


class UnsatisfiableError(HwqError):
    """A well-formed request that has no answer (exit code 1)."""

    exit_code = 1


class ToolMissingError(HwqError):
    """An external tool (simulator, synthesiser) is not installed; the message says how to install it."""

    exit_code = 1
