from django.urls import path

from komu.surveys import views

app_name = "surveys"
urlpatterns = [
    path("", views.index, name="index"),
    path("new/", views.create, name="create"),
    path("<int:survey_id>/edit/", views.edit, name="edit"),
    path("<int:survey_id>/fields/", views.field_add, name="field_add"),
    path("<int:survey_id>/fields/<int:field_id>/", views.field_change, name="field_change"),
    path("<int:survey_id>/publish/", views.publish, name="publish"),
    path("<int:survey_id>/", views.progress, name="progress"),
    path("<int:survey_id>/remind/", views.remind, name="remind"),
    path("<int:survey_id>/close/", views.close, name="close"),
    path("<int:survey_id>/results/", views.results, name="results"),
    path("<int:survey_id>/results.<str:fmt>", views.export, name="export"),
    path("<int:survey_id>/answers/<uuid:answer_id>/", views.board_answer, name="board_answer"),
    path("answers/<uuid:answer_id>/", views.answer, name="answer"),
    path("files/<uuid:file_id>/", views.download_file, name="file"),
]
