from django.urls import path

from komu.audit import views

app_name = "audit"
urlpatterns = [
    path("", views.trail, name="trail"),
]
