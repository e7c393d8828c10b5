"""学齢簿, 入学者名簿 and 転学. Each views module keeps its own ``urlpatterns``; this file joins them."""

from komu.rosters.views import board, imports, school, transfers

app_name = "rosters"
urlpatterns = [*imports.urlpatterns, *board.urlpatterns, *school.urlpatterns, *transfers.urlpatterns]
