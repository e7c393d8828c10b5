"""OneRoster screens (/oneroster/). The REST binding lives under /ims/oneroster/ (komu.oneroster.rest_urls)."""

from django.urls import URLPattern

app_name = "oneroster"

urlpatterns: list[URLPattern] = []
