from django.apps import AppConfig


class SurveysConfig(AppConfig):
    name = "komu.surveys"
    verbose_name = "照会・回答"

    def ready(self) -> None:
        # Registers the survey answer as a document type of the approvals engine (komu.approvals.registry).
        from komu.surveys import services  # noqa: F401
