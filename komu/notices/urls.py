from django.urls import path

from komu.notices import views

app_name = "notices"

urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("sent/", views.sent, name="sent"),
    path("new/", views.notice_new, name="notice_new"),
    path("<int:notice_id>/", views.notice_detail, name="notice_detail"),
    path("<int:notice_id>/acknowledge/", views.notice_acknowledge, name="notice_acknowledge"),
    path("<int:notice_id>/remind/", views.notice_remind, name="notice_remind"),
    path("<int:notice_id>/forward/", views.notice_forward, name="notice_forward"),
    path("files/<str:attachment_id>/", views.attachment_download, name="attachment"),
    path("letters/", views.letters, name="letters"),
    path("letters/new/", views.letter_new, name="letter_new"),
    path("letters/<int:letter_id>/", views.letter_detail, name="letter_detail"),
    path("my-letters/", views.guardian_letters, name="guardian_letters"),
    path("my-letters/<int:letter_id>/", views.guardian_letter, name="guardian_letter"),
    path("paper/", views.paper_sends, name="paper_sends"),
    path("notifications/", views.notification_list, name="notification_list"),
    path("notifications/<uuid:notification_id>/", views.notification_open, name="notification_open"),
    path("notifications/read-all/", views.notification_read_all, name="notification_read_all"),
    path("notifications/settings/", views.notification_settings, name="notification_settings"),
]
