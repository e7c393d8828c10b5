"""出欠 URLs (namespace "attendance"), joined from the screen modules in komu/attendance/views/.

Each views module exports its own `urlpatterns`; add a module by importing it and unpacking its list below.
"""

from django.urls import URLPattern, URLResolver

from komu.attendance.views import entry, guardian, monthly

app_name = "attendance"
urlpatterns: list[URLPattern | URLResolver] = [
    *entry.urlpatterns,
    *guardian.urlpatterns,
    *monthly.urlpatterns,
]
