from django.urls import path

from komu.privacy import views

app_name = "privacy"

urlpatterns = [
    path("incidents/", views.incident_list, name="incident_list"),
]
