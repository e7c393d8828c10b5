from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "komu.approvals"
    verbose_name = "決裁"
