from django.apps import AppConfig


class DedupConfig(AppConfig):
    name = "dedup"
    verbose_name = "Videos and matching"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers system checks)
