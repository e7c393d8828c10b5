from django.urls import path

from komu.directory import views

app_name = "directory"
urlpatterns = [
    path("", views.school_list, name="schools"),
    path("schools/new/", views.school_create, name="school_create"),
    path("schools/<int:school_id>/", views.school_detail, name="school_detail"),
    path("schools/<int:school_id>/edit/", views.school_edit, name="school_edit"),
    path("schools/<int:school_id>/years/new/", views.year_create, name="year_create"),
    path("schools/<int:school_id>/staff/new/", views.staff_assign, name="staff_assign"),
    path("years/<int:year_id>/terms/", views.terms_edit, name="terms_edit"),
    path("years/<int:year_id>/classes/new/", views.class_create, name="class_create"),
    path("classes/<int:class_id>/edit/", views.class_edit, name="class_edit"),
    path("staff/<int:assignment_id>/end/", views.staff_end, name="staff_end"),
    path("boards/", views.board_list, name="boards"),
    path("boards/new/", views.board_create, name="board_create"),
    path("boards/<int:board_id>/", views.board_detail, name="board_detail"),
    path("boards/<int:board_id>/edit/", views.board_edit, name="board_edit"),
    path("boards/<int:board_id>/staff/new/", views.board_staff_assign, name="board_staff_assign"),
    path("bulk-load/", views.bulk_load, name="bulk_load"),
    path("bulk-load/apply/", views.bulk_load_apply, name="bulk_load_apply"),
    path("bulk-load/samples/<slug:kind>.csv", views.bulk_load_sample, name="bulk_load_sample"),
]
