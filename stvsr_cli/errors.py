"""The project's own error types: the CLI turns each into a red one-line message and exits
with the class's ``exit_code`` (1; 2 for an option that cannot work; 128 + the signal number
when stopped by a signal, as shells report it)."""


class StvsrError(Exception):
    """A problem the user can fix (bad input, bad option, missing file); never a bug.

    Every subclass takes just its message, so a handler can re-raise ``type(e)(new message)``."""

    exit_code = 1


class UsageError(StvsrError):
    """An option value that cannot work (too small a tile, half precision on a CPU, ...)."""

    exit_code = 2


class InputError(StvsrError):
    """The input video cannot be read or is not a video."""


class OutputError(StvsrError):
    """The output cannot be written where or how it was asked for."""


class WeightsError(StvsrError):
    """A weights file is missing, unreadable, not ours, or does not match its architecture."""


class Interrupted(StvsrError):
    """The run was stopped by SIGINT (Ctrl-C); no output was left behind."""

    exit_code = 130


class Terminated(Interrupted):
    """The run was stopped by SIGTERM; no output was left behind."""

    exit_code = 143
