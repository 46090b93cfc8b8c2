"""Errors the CLI turns into a message and an exit status instead of a traceback."""


class PairgenError(Exception):
    """Bad input the user can fix (a missing file, a corrupt scene, an empty source): exit 1."""


class RecipeError(PairgenError):
    """A recipe file or --set override that does not validate; names file, line and the allowed values."""


class UsageError(PairgenError):
    """Wrong command-line usage (bad option combination or value): exit 2."""


class Interrupted(PairgenError):
    """The build was stopped (Ctrl-C, SIGTERM); the folder is resumable: exit 130."""
