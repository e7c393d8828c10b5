from django.apps import AppConfig


class OneRosterConfig(AppConfig):
    name = "komu.oneroster"
    label = "oneroster"
    verbose_name = "OneRoster 1.2（日本プロファイル）"
