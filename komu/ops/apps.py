from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Production operations: the standby read router, metrics, readiness, outage pages, backup and restore."""

    name = "komu.ops"
    label = "ops"
    verbose_name = "運用"
