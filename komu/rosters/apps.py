from django.apps import AppConfig


class RostersConfig(AppConfig):
    name = "komu.rosters"
    verbose_name = "学齢簿・入学者名簿・転学"
