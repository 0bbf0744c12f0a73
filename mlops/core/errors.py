"""Errors the CLI turns into one line on stderr and an exit code."""


class MlopsError(Exception):
    """A failure the user can act on. `exit_code` is what the CLI returns."""

    exit_code = 1


class UsageError(MlopsError):
    """Bad input: a missing file, a bad config value, an unknown version."""

    exit_code = 2


class StepFailed(MlopsError):
    """A pipeline step exited non-zero."""


class GateFailed(MlopsError):
    """The quality gate rejected the model."""
