from django.urls import path, re_path

from komu.progress import views

app_name = "progress"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("units/<str:level>/<str:key>/", views.unit, name="unit"),
    path("map/", views.map_view, name="map"),
    path("measure/", views.measure_now, name="measure_now"),
    path("indicators/", views.indicator_list, name="indicators"),
    path("indicators/<str:code>/", views.indicator_detail, name="indicator"),
    path("checklist/", views.checklist, name="checklist"),
    path("checklist/<int:response_id>/", views.checklist_edit, name="checklist_edit"),
    path("checklist/<int:response_id>/return/", views.checklist_return, name="checklist_return"),
    path("open/", views.open_data, name="open"),
    path("open/dictionary.json", views.open_dictionary, name="open_dictionary"),
    re_path(r"^open/(?P<level>[a-z]+)-(?P<month>\d{4}-\d{2})\.(?P<fmt>csv|json)$", views.open_file,
            name="open_file"),
    path("api/v1/values", views.api_values, name="api_values"),
    path("federation/members/", views.federation_members, name="federation_members"),
    path("federation/snapshots/", views.federation_receive, name="federation_receive"),
]
