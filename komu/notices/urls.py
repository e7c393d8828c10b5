from django.urls import path

from komu.notices import views

app_name = "notices"

urlpatterns = [
    path("notifications/", views.notification_list, name="notification_list"),
    path("notifications/<uuid:notification_id>/", views.notification_open, name="notification_open"),
    path("notifications/read-all/", views.notification_read_all, name="notification_read_all"),
    path("notifications/settings/", views.notification_settings, name="notification_settings"),
]
