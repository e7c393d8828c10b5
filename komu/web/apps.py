from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "komu.web"
    verbose_name = "画面の共通部分"
