"""Pure feature extractors: a path or frames in, a frozen dataclass out. No Django imports here."""

# 4: short videos sampled at 2-4 fps; 5: frame thumbnails; 6: pictures turned upright as the file's
# display matrix says (phone videos)
FEATURE_VERSION = 6
# Version 5 made this version's features for every file whose pictures need no turning:
# `manage.py reextract` only re-versions those (see `dedup.services.carry_forward_upright`).
SAME_FOR_UPRIGHT_FILES = 5


class ExtractionError(Exception):
    """A file cannot be processed; the message is shown to users as the failure reason."""
