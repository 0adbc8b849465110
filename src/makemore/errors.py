"""The one exception type a user is meant to see.

Library code raises `MakemoreError` for anything caused by input (a file, an
option, a run directory); the CLI turns it into a one-line message and a
non-zero exit code. Anything else escaping is a bug in makemore.
"""


class MakemoreError(Exception):
    """A problem with the user's input, worded as what is wrong and how to fix it."""
