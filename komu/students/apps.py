from django.apps import AppConfig


class StudentsConfig(AppConfig):
    name = "komu.students"
    verbose_name = "児童生徒"
