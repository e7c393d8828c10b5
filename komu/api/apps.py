from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "komu.api"
    verbose_name = "JSON API"
