from django.apps import AppConfig


class TripsConfig(AppConfig):
    name = "komu.trips"
    verbose_name = "校外活動（引率者の連絡先閲覧）"
