from django.apps import AppConfig


class SecurityConfig(AppConfig):
    name = "komu.security"
    verbose_name = "暗号化と鍵"
