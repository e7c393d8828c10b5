"""The OneRoster 1.2 REST binding (read-only rostering) and its OAuth 2 token endpoint, under /ims/oneroster/."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
