"""The one exception type for errors a user can cause (bad file, wrong shape, bad option)."""


class LoczooError(Exception):
    """A problem with the user's input; the CLI prints it as one line and exits with code 2."""
