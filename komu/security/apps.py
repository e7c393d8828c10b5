from django.apps import AppConfig


class SecurityConfig(AppConfig):
    name = "komu.security"
    verbose_name = "暗号化と鍵"

    def ready(self) -> None:
        from django.core import checks

        from komu.security.blobs import check_storage

        checks.register(check_storage, checks.Tags.security, deploy=True)
