"""Errors the CLI turns into clear messages: a usage error exits 2, a runtime error exits 1."""


class GenretrieveError(RuntimeError):
    """Something went wrong at run time; the message says what and what to do (exit 1)."""


class UsageError(ValueError):
    """The user asked for something that cannot work as asked (exit 2)."""


class MissingWeights(GenretrieveError):
    """Model weights are not installed; the message names the command that installs them."""


class IncompatibleArtifact(GenretrieveError):
    """An index, adapter or cache made with another model, refused rather than mixed."""


class DamagedIndex(GenretrieveError):
    """An index folder whose manifest or database cannot be read; the message names the rebuild command."""
