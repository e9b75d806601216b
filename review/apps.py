from django.apps import AppConfig
from django.apps import apps as global_apps
from django.db.models.signals import post_migrate


def _grant_roles(sender, *, using, apps=global_apps, **kwargs) -> None:
    # flush (between transactional tests) sends post_migrate without the migration state
    from dedup.access import roles_grant

    try:
        apps.get_model("auth", "Group")
    except LookupError:  # auth not migrated on this database: nothing to grant yet
        return
    roles_grant(apps=apps, using=using)


class ReviewConfig(AppConfig):
    name = "review"
    verbose_name = "Review queue"

    def ready(self) -> None:
        # after every migrate (and the test runner's flushes), once Django has created the
        # permission rows that the role groups are given
        post_migrate.connect(_grant_roles, sender=self, dispatch_uid="review.grant_roles")
        from dedup.observability import APP_COLLECTORS

        from .metrics import decision_metrics

        if decision_metrics not in APP_COLLECTORS:
            APP_COLLECTORS.append(decision_metrics)
        # calibration runs as a dedup job, in a worker; dedup knows it only by its kind
        from dedup.models import Job
        from dedup.services import job_runner_register

        from .services import calibration_job

        job_runner_register(Job.Kind.CALIBRATION, calibration_job)
