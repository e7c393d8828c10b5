from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "komu.audit"
    verbose_name = "監査ログ"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from komu.audit import guard

        # Infrastructure, not business logic: every new connection learns whether audit purges are allowed.
        connection_created.connect(guard.on_connection_created, dispatch_uid="komu.audit.guard")
