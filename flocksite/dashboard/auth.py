"""Who may use the dashboard: active staff users, signed in with Django's auth. Create the first
one with `python manage.py createsuperuser`."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import user_passes_test
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.core.exceptions import ValidationError

from accounts.admin import admin_actor

__all__ = ["LoginView", "LogoutView", "actor_of", "is_admin", "staff_required"]

actor_of = admin_actor  # dashboard actions are audited like Django admin's: "admin:<username>"


def is_admin(user) -> bool:
    return bool(user and user.is_active and user.is_staff)


# Works on sync and async views alike (Django 5.1+); anyone else is sent to the login page.
staff_required = user_passes_test(is_admin, login_url="dashboard:login")


# Failed sign-ins allowed from one address in a window before it must wait for the window to pass.
LOGIN_FAILURES_ALLOWED = 10
LOGIN_WINDOW_SECONDS = 15 * 60


def _failures_key(request) -> str:
    return f"dashboard:login-failures:{request.META.get('REMOTE_ADDR', '') if request else ''}"


class StaffAuthenticationForm(AuthenticationForm):
    """Django's sign-in form for staff only, with failed attempts limited per address."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "locked": "Too many failed sign-ins from your address. Wait 15 minutes and try again, "
                  "or ask another admin to reset your password.",
        "not_staff": "This account is not a Flock admin. Ask an admin to tick “Staff status” "
                     "for it in Django admin, or create one with `python manage.py "
                     "createsuperuser`.",
    }

    def clean(self):
        key = _failures_key(self.request)
        if cache.get(key, 0) >= LOGIN_FAILURES_ALLOWED:
            raise ValidationError(self.error_messages["locked"], code="locked")
        try:
            return super().clean()
        except ValidationError as exc:
            if any(e.code == "invalid_login" for e in exc.error_list):
                cache.add(key, 0, LOGIN_WINDOW_SECONDS)
                try:
                    cache.incr(key)
                except ValueError:  # expired between add and incr
                    cache.set(key, 1, LOGIN_WINDOW_SECONDS)
            raise

    def confirm_login_allowed(self, user) -> None:
        super().confirm_login_allowed(user)
        if not user.is_staff:
            raise ValidationError(self.error_messages["not_staff"], code="not_staff")


class LoginView(auth_views.LoginView):
    template_name = "dashboard/login.html"
    authentication_form = StaffAuthenticationForm


class LogoutView(auth_views.LogoutView):
    next_page = "dashboard:login"
