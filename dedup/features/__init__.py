"""Pure feature extractors: a path or frames in, a frozen dataclass out. No Django imports here."""

FEATURE_VERSION = 3


class ExtractionError(Exception):
    """A file cannot be processed; the message is shown to users as the failure reason."""
