from django.urls import path

from komu.trips import views

app_name = "trips"
urlpatterns = [
    path("", views.trip_list, name="list"),
    path("new/", views.trip_new, name="new"),
    path("lost/", views.lost_code, name="lost_code"),
    path("<int:trip_id>/", views.trip_detail, name="detail"),
    path("<int:trip_id>/edit/", views.trip_edit, name="edit"),
    path("<int:trip_id>/health/", views.health, name="health"),
    path("<int:trip_id>/contacts/", views.sheet, name="sheet"),
    path("<int:trip_id>/lost/", views.lost_self, name="lost_self"),
    path("<int:trip_id>/code/", views.issue_code, name="issue_code"),
    path("<int:trip_id>/incidents/<str:incident_id>/report/", views.incident_report, name="incident_report"),
    path("<int:trip_id>/chaperones/<int:chaperone_id>/revoke/", views.chaperone_revoke, name="revoke"),
]
