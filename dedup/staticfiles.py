"""Static files: WhiteNoise's compressed manifest storage (file names carry their hash, so browsers
may cache them for ever), forgiving where nothing was collected yet."""

from whitenoise.storage import CompressedManifestStaticFilesStorage


class ManifestStaticStorage(CompressedManifestStaticFilesStorage):
    """`manage.py serve` and the container collect the static files at start; tests, the test
    client and one-off commands render pages without that step. There a file that is not in the
    manifest keeps its plain name (WhiteNoise serves it from the app's folders, WHITENOISE_USE_FINDERS)
    instead of failing the page."""

    manifest_strict = False

    def hashed_name(self, name, content=None, filename=None):
        try:
            return super().hashed_name(name, content, filename)
        except ValueError:
            if content is not None:  # collectstatic itself: a real error
                raise
            return name
