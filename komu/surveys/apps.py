from django.apps import AppConfig


class SurveysConfig(AppConfig):
    name = "komu.surveys"
    verbose_name = "照会・回答"
