from django.urls import path

from komu.privacy import views

app_name = "privacy"

urlpatterns = [
    path("incidents/", views.incident_list, name="incident_list"),
    path("incidents/new/", views.incident_new, name="incident_new"),
    path("incidents/<str:incident_id>/", views.incident_detail, name="incident_detail"),
    path("incidents/<str:incident_id>/report/", views.incident_report_print, name="incident_report"),
    path("incidents/<str:incident_id>/letters/", views.incident_letters, name="incident_letters"),
    path("lockout/", views.staff_lockout, name="staff_lockout"),
    path("retention/", views.retention_schedule, name="retention"),
]
