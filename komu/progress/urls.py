from django.urls import path

from komu.progress import views

app_name = "progress"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
]
