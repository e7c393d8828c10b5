from django.urls import include, path

from komu.api.api import api
from komu.ops import views as ops_views
from komu.web import views as web_views

urlpatterns = [
    path("healthz", web_views.healthz, name="healthz"),
    path("readyz", ops_views.readyz, name="readyz"),
    path("metrics", ops_views.metrics_view, name="metrics"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("accounts/", include("komu.accounts.urls")),
    path("directory/", include("komu.directory.urls")),
    path("students/", include("komu.students.urls")),
    path("audit/", include("komu.audit.urls")),
    path("attendance/", include("komu.attendance.urls")),
    path("approvals/", include("komu.approvals.urls")),
    path("rosters/", include("komu.rosters.urls")),
    path("oneroster/", include("komu.oneroster.urls")),
    path("ims/oneroster/", include("komu.oneroster.rest_urls")),
    path("notices/", include("komu.notices.urls")),
    path("surveys/", include("komu.surveys.urls")),
    path("trips/", include("komu.trips.urls")),
    path("disclosures/", include("komu.disclosures.urls")),
    path("privacy/", include("komu.privacy.urls")),
    path("progress/", include("komu.progress.urls")),
    # Passkey ceremonies: the package's views narrowed to Komu's rules (no passwordless sign-in, re-auth to
    # add).
    path("webauthn/", include("komu.accounts.webauthn_urls", namespace="otp_webauthn")),
    path("api/v1/", api.urls),
    path("", include("komu.web.urls")),
]

# A database outage answers 503 with a retry page instead of an error (komu.ops.views.server_error).
handler500 = "komu.ops.views.server_error"
