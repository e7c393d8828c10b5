from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "komu.accounts"
    verbose_name = "アカウント"
