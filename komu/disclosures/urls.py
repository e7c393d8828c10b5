from django.urls import path

from komu.disclosures import views

app_name = "disclosures"
urlpatterns = [
    path("print/", views.print_index, name="print_index"),
    path("print/classes/<str:class_id>/", views.print_class, name="print_class"),
    path("", views.register, name="register"),
    path("<str:serial>/", views.detail, name="detail"),
    path("<str:serial>/close/", views.close, name="close"),
    path("<str:serial>/lost/", views.report_lost, name="report_lost"),
]
