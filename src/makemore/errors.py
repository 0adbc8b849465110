"""The exceptions a user is meant to see.

Library code raises `MakemoreError` for anything caused by input (a file, an
option, a run directory); the CLI turns it into a one-line message and a
non-zero exit code. Anything else escaping is a bug in makemore.

A value outside its bounds raises `ParameterError`, which names the parameter as
the library calls it (`temperature`, `batch_size`); the command line swaps in the
flag its user typed (`--temperature`, `--batch-size`), so each audience reads the
name it knows.
"""


class MakemoreError(Exception):
    """A problem with the user's input, worded as what is wrong and how to fix it."""


class ParameterError(MakemoreError):
    """One parameter's value is out of bounds: `str(e)` is "<parameter> <problem>"."""

    def __init__(self, parameter: str, problem: str, related: tuple[str, ...] = ()):
        self.parameter = parameter  # the library's name for it, e.g. "top_p"
        self.problem = problem  # e.g. "must be in (0, 1], got 2.0"
        self.related = related  # other parameters named in `problem` (e.g. "max_len" in "... greater than max_len")
        super().__init__(f"{parameter} {problem}")

    def __reduce__(self):  # pickled whole (a run in a worker process, makemore.training.parallel_runs, raises it back here)
        return (type(self), (self.parameter, self.problem, self.related))
