"""django-otp-webauthn's URLs (same namespace and names) served by Komu's narrowed views
(komu.accounts.webauthn).

komu/urls.py mounts this module at /webauthn/ in place of the package's own urls module; the two must not both
be mounted, or the package's unrestricted views would be reachable beside these.
"""

from django.urls import path
from django.views.i18n import JavaScriptCatalog

from komu.accounts import webauthn

app_name = "otp_webauthn"

urlpatterns = [
    path(
        "registration/begin/", webauthn.BeginRegistrationView.as_view(), name="credential-registration-begin"
    ),
    path(
        "registration/complete/",
        webauthn.CompleteRegistrationView.as_view(),
        name="credential-registration-complete",
    ),
    path(
        "authentication/begin/",
        webauthn.BeginAuthenticationView.as_view(),
        name="credential-authentication-begin",
    ),
    path(
        "authentication/complete/",
        webauthn.CompleteAuthenticationView.as_view(),
        name="credential-authentication-complete",
    ),
    # The package's browser strings, with Japanese from komu/accounts/locale (the package ships no Japanese).
    path(
        "jsi18n/",
        JavaScriptCatalog.as_view(packages=["django_otp_webauthn", "komu.accounts"]),
        name="js-i18n-catalog",
    ),
]
