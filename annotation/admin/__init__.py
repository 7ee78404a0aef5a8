"""Django admin for admins and project managers.

Superusers see everything. Project managers (staff users with a manager membership) see and edit only their
projects' objects; labelers (not staff) have no admin. Rankings, assignments and responses are read-only; saves go
through the services (project_create/update, guideline_publish, membership_set/remove, prompts_import,
prompt_gold_set/unset).
"""

from annotation.admin import projects, records, users  # noqa: F401 - registers the ModelAdmins
from annotation.admin.base import ProjectScopedAdmin, ReadOnlyAdmin, managed_project_ids

__all__ = ["ProjectScopedAdmin", "ReadOnlyAdmin", "managed_project_ids"]
