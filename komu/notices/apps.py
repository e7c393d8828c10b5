from django.apps import AppConfig


class NoticesConfig(AppConfig):
    name = "komu.notices"
    verbose_name = "通知・お便り・お知らせ"
