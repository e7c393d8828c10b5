from django.urls import path

from komu.accounts import views

# The sign-in steps (login, logout, mfa/…, password-reset/…) are the only account pages a password-only
# session may reach: MfaRequiredMiddleware opens exactly those, so keep new pre-verification pages under them.
app_name = "accounts"
urlpatterns = [
    path("login/", views.login_view, name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("mfa/verify/", views.mfa_verify, name="mfa_verify"),
    path("mfa/enrol/", views.mfa_enrol, name="mfa_enrol"),
    path("password-reset/", views.password_reset, name="password_reset"),
    path("password-reset/sent/", views.password_reset_done, name="password_reset_done"),
    path(
        "password-reset/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path("password-reset/complete/", views.password_reset_complete, name="password_reset_complete"),
    path("security/", views.security, name="security"),
    path("security/reauth/", views.reauth, name="reauth"),
    path("security/totp/add/", views.totp_add, name="totp_add"),
    path("security/devices/<str:kind>/<int:device_id>/remove/", views.device_remove, name="device_remove"),
    path("security/recovery-codes/", views.recovery_codes, name="recovery_codes"),
    path("security/password/", views.password_change, name="password_change"),
    path("security/api-tokens/", views.api_tokens, name="api_tokens"),
    path("security/api-tokens/<int:token_id>/revoke/", views.api_token_revoke, name="api_token_revoke"),
]
