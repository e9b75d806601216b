"""Pure feature extractors: a path or frames in, a frozen dataclass out. No Django imports here."""

# 4: short videos sampled at 2-4 fps; 5: frame thumbnails; 6: pictures turned upright as the file's
# display matrix says (phone videos), and a video longer than the frame budget sampled over all of
# its length instead of its first ASTRADUP_MAX_FRAMES seconds
FEATURE_VERSION = 6
# Version 5 made this version's features for a file whose pictures need no turning and whose
# seconds fit the frame budget: `manage.py reextract` only re-versions those (see
# `dedup.services.extraction.carry_forward_unchanged`).
UNCHANGED_SINCE = 5


class ExtractionError(Exception):
    """A file cannot be processed; the message is shown to users as the failure reason."""
