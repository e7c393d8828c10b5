"""Filled in by the rosters work in progress."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
