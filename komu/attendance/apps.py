from django.apps import AppConfig


class AttendanceConfig(AppConfig):
    name = "komu.attendance"
    verbose_name = "出欠"

    def ready(self) -> None:
        # Registers the monthly 出席簿 as a document type of the approvals engine (komu.approvals.registry).
        from komu.attendance.services import monthly  # noqa: F401
