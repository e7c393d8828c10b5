from django.urls import path

from komu.approvals import views

app_name = "approvals"
urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("<int:request_id>/", views.detail, name="detail"),
    path("<int:request_id>/approve/", views.approve, name="approve"),
    path("<int:request_id>/return/", views.send_back, name="return"),
    path("<int:request_id>/withdraw/", views.withdraw, name="withdraw"),
    path("<int:request_id>/verify/", views.verify, name="verify"),
    path("settings/", views.settings_index, name="settings"),
    path("settings/<int:school_id>/", views.settings_school, name="settings_school"),
    path("settings/<int:school_id>/chains/<str:document_type>/", views.chain_edit, name="chain_edit"),
    path("settings/<int:school_id>/delegations/", views.delegation_add, name="delegation_add"),
    path("settings/<int:school_id>/delegations/<int:delegation_id>/end/", views.delegation_end,
         name="delegation_end"),
]
