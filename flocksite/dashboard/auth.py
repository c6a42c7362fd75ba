"""Who may use the dashboard: active staff users, signed in with Django's auth. Create the first
one with `python manage.py createsuperuser`."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import user_passes_test
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from accounts.admin import admin_actor

__all__ = ["LoginView", "LogoutView", "actor_of", "is_admin", "staff_required"]

actor_of = admin_actor  # dashboard actions are audited like Django admin's: "admin:<username>"


def is_admin(user) -> bool:
    return bool(user and user.is_active and user.is_staff)


# Works on sync and async views alike (Django 5.1+); anyone else is sent to the login page.
staff_required = user_passes_test(is_admin, login_url="dashboard:login")


class StaffAuthenticationForm(AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        "not_staff": "This account is not a Flock admin. Ask an admin to tick “Staff status” "
                     "for it in Django admin, or create one with `python manage.py "
                     "createsuperuser`.",
    }

    def confirm_login_allowed(self, user) -> None:
        super().confirm_login_allowed(user)
        if not user.is_staff:
            raise ValidationError(self.error_messages["not_staff"], code="not_staff")


class LoginView(auth_views.LoginView):
    template_name = "dashboard/login.html"
    authentication_form = StaffAuthenticationForm


class LogoutView(auth_views.LogoutView):
    next_page = "dashboard:login"
