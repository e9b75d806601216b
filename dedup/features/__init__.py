"""Pure feature extractors: a path or frames in, a frozen dataclass out. No Django imports here."""

FEATURE_VERSION = 5  # 4: short videos sampled at 2-4 fps; 5: frame thumbnails


class ExtractionError(Exception):
    """A file cannot be processed; the message is shown to users as the failure reason."""
