"""The login page, which says how to log in to the demo while its generated password holds."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.views import LoginView

from ippam.selectors.demo_login import demo_login_shown


class DemoAwareLoginView(LoginView):
    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["demo_login"] = demo_login_shown()
        return context


login_view = DemoAwareLoginView.as_view()
