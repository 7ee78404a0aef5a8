"""Who may call what. Outsiders get 404 for a project (they learn nothing); its labelers get 403 on manager-only
operations; admins (superusers) may do everything."""

from django.core.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission

from annotation.models import Project
from annotation.selectors import is_admin, project_get_for_user, role_in_project

MANAGING_ROLES = ("admin", "manager")
NOT_ADMIN = "Only administrators can do this."
NOT_MANAGER = "Only this project's managers can do this."


class IsAdmin(BasePermission):
    message = NOT_ADMIN

    def has_permission(self, request, view) -> bool:
        return is_admin(request.user)


def project_for(request, slug: str, *, manage: bool = False) -> Project:
    """The project named in the URL if the caller is a member (404 otherwise); manage=True also needs a manager."""
    project = project_get_for_user(user=request.user, slug=slug)
    if manage and role_in_project(user=request.user, project=project) not in MANAGING_ROLES:
        raise PermissionDenied(NOT_MANAGER)
    return project
