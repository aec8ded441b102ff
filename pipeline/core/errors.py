"""User-facing errors: the CLI prints their message (no traceback) and exits non-zero."""


class PipelineError(Exception):
    """Base class of every error whose message tells the user what went wrong and what to do."""


class DataError(PipelineError, ValueError):
    """Bad input data: the message names the file, the row or column, and the fix."""


class ParamsError(PipelineError, ValueError):
    """Invalid params.yaml: the message lists every bad key."""


class SourceUnavailable(PipelineError, RuntimeError):
    """A data source cannot be reached (offline, no credentials, rules not accepted).

    ``fix`` is the exact command or setting that makes the source available.
    """

    def __init__(self, message: str, fix: str = ""):
        super().__init__(message if not fix else f"{message}\nTo fix: {fix}")
        self.reason = message
        self.fix = fix


class StageOutputError(PipelineError, FileNotFoundError):
    """A stage's output is missing or in a layout this code does not read: the message names
    the file and the stage (``python -m pipeline ...`` / ``dvc repro ...``) that writes it."""
