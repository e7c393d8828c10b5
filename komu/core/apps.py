from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "komu.core"
    verbose_name = "共通基盤"
