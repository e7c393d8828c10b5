"""OneRoster screens (/oneroster/). The REST binding lives under /ims/oneroster/ (komu.oneroster.rest_urls)."""

from django.urls import URLPattern, path

from komu.oneroster import views

app_name = "oneroster"

urlpatterns: list[URLPattern] = [
    path("export/", views.export, name="export"),
    path("import/", views.import_bundle, name="import"),
    path("clients/", views.clients, name="clients"),
    path("clients/<int:client_id>/revoke/", views.client_revoke, name="client_revoke"),
]
