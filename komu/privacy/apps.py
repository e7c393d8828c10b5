from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    name = "komu.privacy"
    verbose_name = "個人情報の漏えい等への対応と保存期間"
