from django.urls import path

from komu.web import views

app_name = "web"
urlpatterns = [
    path("", views.home, name="home"),
    path("stats/", views.stats, name="stats"),
]
