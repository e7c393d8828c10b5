from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "komu.demo"
    verbose_name = "デモデータ"
