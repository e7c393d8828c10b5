from django.apps import AppConfig


class DisclosuresConfig(AppConfig):
    name = "komu.disclosures"
    verbose_name = "個人データの印刷・出力の記録"
