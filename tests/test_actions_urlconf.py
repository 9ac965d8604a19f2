"""URLconf for the action tests: the project's own, plus the action routes if it lacks them.

Holds no tests. The project's dashboard/urls.py is meant to include dashboard.action_urls;
this keeps the action tests independent of when that line lands.
"""

from django.urls import include, path

from dashboard.urls import urlpatterns as _project_patterns


def _includes_actions(patterns) -> bool:
    for pattern in patterns:
        module = getattr(pattern, "urlconf_name", None)
        name = module if isinstance(module, str) else getattr(module, "__name__", "")
        if name == "dashboard.action_urls":
            return True
    return False


urlpatterns = list(_project_patterns)
if not _includes_actions(urlpatterns):
    urlpatterns.append(path("", include("dashboard.action_urls")))
