"""The one exception type that the CLIs turn into a single sentence and a non-zero exit."""


class RltrainError(Exception):
    """A problem the user can fix; its message names the problem and the fix."""
