"""A URLconf for test_idempotency.py: three small write views."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path


def create_redirect(request: HttpRequest) -> HttpResponse:
    group = Group.objects.create(name=f"g-{Group.objects.count()}")
    return HttpResponseRedirect(f"/done/{group.pk}/")


def create_page(request: HttpRequest) -> HttpResponse:
    group = Group.objects.create(name=f"p-{Group.objects.count()}")
    return HttpResponse(f"<p>作成しました: {group.name}</p>", content_type="text/html; charset=utf-8")


def invalid(request: HttpRequest) -> HttpResponse:
    return HttpResponse("入力に誤りがあります", status=400)


def fails_after_write(request: HttpRequest) -> HttpResponse:
    Group.objects.create(name="half-done")
    raise RuntimeError("the process dies here")


urlpatterns = [
    path("redirect/", create_redirect),
    path("page/", create_page),
    path("invalid/", invalid),
    path("fails/", fails_after_write),
]
