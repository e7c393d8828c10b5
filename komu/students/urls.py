from django.urls import path

from komu.students import views

app_name = "students"
urlpatterns = [
    path("", views.student_list, name="list"),
    path("children/", views.children, name="children"),
    path("<uuid:student_id>/", views.student_detail, name="detail"),
    path("<uuid:student_id>/edit/", views.student_edit, name="edit"),
]
