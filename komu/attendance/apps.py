from django.apps import AppConfig


class AttendanceConfig(AppConfig):
    name = "komu.attendance"
    verbose_name = "出欠"
