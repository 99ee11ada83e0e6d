"""The project's own error type: the CLI turns it into a red one-line message and exit code 1."""


class StvsrError(Exception):
    """A problem the user can fix (bad input, bad option, missing file); never a bug."""


class InputError(StvsrError):
    """The input video cannot be read or is not a video."""


class OutputError(StvsrError):
    """The output cannot be written where or how it was asked for."""


class WeightsError(StvsrError):
    """A weights file is missing, unreadable, not ours, or does not match its architecture."""


class Interrupted(StvsrError):
    """The run was stopped by SIGINT or SIGTERM; no output was left behind."""
