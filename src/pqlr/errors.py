"""Errors PQLR raises for bad input. The CLI prints them as one line and exits non-zero."""


class PqlrError(Exception):
    """A problem with the user's input or files: printed as one line, exit code 2."""

    exit_code = 2


class UnsupportedError(PqlrError):
    """A layer, op or value PQLR cannot handle; the message names it."""


class BudgetError(PqlrError):
    """A RAM/flash budget that no plan can meet; the message gives the minimum that would."""
