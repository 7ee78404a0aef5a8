"""What every admin of this app shares: project-scoped querysets and permissions for managers."""

from django.contrib import admin
from django.http import Http404
from django.utils.text import Truncator

from annotation.models import Membership, Project


def managed_project_ids(user) -> set[int]:
    """Projects a staff user manages (empty for anyone else)."""
    if not (user.is_active and user.is_staff):
        return set()
    return set(Membership.objects.filter(user=user, role=Membership.Role.MANAGER).values_list("project_id", flat=True))


def _short(text: str, chars: int = 80) -> str:
    return Truncator(text).chars(chars)


class ProjectScopedAdmin(admin.ModelAdmin):
    """Rows are scoped to the user's managed projects; `can_*` switch operations off for everyone (read-only)."""

    project_path = "project"  # lookup from this model to its Project; "" for Project itself
    can_add = can_change = can_delete = True
    managers_can_delete = True

    def project_id_of(self, obj) -> int:
        if not self.project_path:
            return obj.pk
        *hops, last = self.project_path.split("__")
        for hop in hops:
            obj = getattr(obj, hop)
        return getattr(obj, f"{last}_id")

    def _may(self, request, obj=None, allowed: bool = True) -> bool:
        if not allowed:
            return False
        if request.user.is_superuser:
            return True
        ids = managed_project_ids(request.user)
        return bool(ids) if obj is None else self.project_id_of(obj) in ids

    def has_module_permission(self, request):
        return self._may(request)

    def has_view_permission(self, request, obj=None):
        return self._may(request, obj)

    def has_add_permission(self, request):
        return self._may(request, None, self.can_add)

    def has_change_permission(self, request, obj=None):
        return self._may(request, obj, self.can_change)

    def has_delete_permission(self, request, obj=None):
        allowed = self.can_delete and (self.managers_can_delete or request.user.is_superuser)
        return self._may(request, obj, allowed)

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        lookup = f"{self.project_path}__in" if self.project_path else "pk__in"
        return queryset.filter(**{lookup: managed_project_ids(request.user)})

    def get_object(self, request, object_id, from_field=None):
        """Another project's object is a 404 for a manager (Django's default is a redirect with a message)."""
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404("No such object, or not one of your projects.")
        return obj

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.related_model is Project and not request.user.is_superuser:
            kwargs["queryset"] = Project.objects.filter(pk__in=managed_project_ids(request.user))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ReadOnlyAdmin(ProjectScopedAdmin):
    can_add = can_change = can_delete = False


class ProjectChildInline:
    """Inline permissions follow the parent project's (managers have no Django model permissions)."""

    editable = True

    def _parent_ok(self, request, obj=None, allowed: bool = True) -> bool:
        if not allowed:
            return False
        if request.user.is_superuser:
            return True
        ids = managed_project_ids(request.user)
        return bool(ids) if obj is None else obj.pk in ids

    def has_view_permission(self, request, obj=None):
        return self._parent_ok(request, obj)

    def has_add_permission(self, request, obj=None):
        return self._parent_ok(request, obj, self.editable)

    def has_change_permission(self, request, obj=None):
        return self._parent_ok(request, obj, self.editable)

    def has_delete_permission(self, request, obj=None):
        return self._parent_ok(request, obj, self.editable)


# --- projects -----------------------------------------------------------------------------------------------------
