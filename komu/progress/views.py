from django.http import HttpRequest, HttpResponse

from komu.access import roles
from komu.web.decorators import require_capability


@require_capability(roles.STATS_VIEW)
def dashboard(request: HttpRequest) -> HttpResponse:
    return HttpResponse("")
