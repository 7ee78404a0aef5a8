import factory
from django.contrib.auth import get_user_model

from annotation.models import Assignment, Guideline, Membership, Project, Prompt, Response

PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class AdminFactory(UserFactory):
    is_staff = True
    is_superuser = True


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Project {n}")
    slug = factory.Sequence(lambda n: f"project-{n}")
    overlap = 3

    @factory.post_generation
    def guideline(obj, create, extracted, **kwargs):
        if create:
            Guideline.objects.create(project=obj, version=1, text=extracted or "# Guidelines\nRank best first.")


class PromptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Prompt
        skip_postgeneration_save = True

    project = factory.SubFactory(ProjectFactory)
    text = factory.Sequence(lambda n: f"Prompt number {n}: explain something.")
    content_hash = factory.Sequence(lambda n: f"{n:064x}")

    @factory.post_generation
    def responses(obj, create, extracted, **kwargs):
        """PromptFactory(responses=4) creates 4 responses (default 4); a list of texts creates those."""
        if not create:
            return
        texts = extracted if isinstance(extracted, list) else [f"Answer {i} to {obj.pk}" for i in range(extracted or 4)]
        for i, text in enumerate(texts):
            Response.objects.create(prompt=obj, text=text, index=i, model_name=f"model-{i}")


class ResponseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Response

    prompt = factory.SubFactory(PromptFactory, responses=0)
    text = factory.Sequence(lambda n: f"stray response {n}")
    index = factory.Sequence(lambda n: n % 10)


def member(project: Project, role: str = Membership.Role.LABELER, **kwargs):
    user = UserFactory(**kwargs)
    Membership.objects.create(project=project, user=user, role=role)
    return user


def labeler(project: Project, **kwargs):
    return member(project, Membership.Role.LABELER, **kwargs)


def manager(project: Project, **kwargs):
    return member(project, Membership.Role.MANAGER, **kwargs)


__all__ = ["Assignment", "AdminFactory", "ProjectFactory", "PromptFactory", "ResponseFactory", "UserFactory"]
