from django.urls import path

from komu.students import views

app_name = "students"
urlpatterns = [
    path("", views.student_list, name="list"),
    path("children/", views.children, name="children"),
    path("placement/", views.placement, name="placement"),
    path("placement/auto/", views.placement_auto, name="placement_auto"),
    path("rollover/", views.rollover, name="rollover"),
    path("numbering/", views.numbering_rule, name="numbering_rule"),
    path("classes/<int:class_id>/renumber/", views.renumber_class, name="renumber_class"),
    path("<uuid:student_id>/", views.student_detail, name="detail"),
    path("<uuid:student_id>/edit/", views.student_edit, name="edit"),
    path("<uuid:student_id>/emergency-contacts/", views.emergency_contacts_edit, name="emergency_contacts"),
    path("<uuid:student_id>/history/new/", views.enrollment_event_new, name="enrollment_event_new"),
    path("<uuid:student_id>/special-needs/", views.special_needs_edit, name="special_needs"),
    path("<uuid:student_id>/guardians/new/", views.guardian_edit, name="guardian_add"),
    path("<uuid:student_id>/guardians/<uuid:guardian_id>/", views.guardian_edit, name="guardian_edit"),
    path(
        "<uuid:student_id>/guardians/<uuid:guardian_id>/unlink/",
        views.guardian_unlink,
        name="guardian_unlink",
    ),
]
