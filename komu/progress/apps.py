from django.apps import AppConfig


class ProgressConfig(AppConfig):
    name = "komu.progress"
    verbose_name = "校務DXの進捗"
