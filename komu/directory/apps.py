from django.apps import AppConfig


class DirectoryConfig(AppConfig):
    name = "komu.directory"
    verbose_name = "学校名簿（組織）"
