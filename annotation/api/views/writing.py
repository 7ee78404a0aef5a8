"""Prompt writing and evaluation sets through the API: labelers write prompts (and list theirs with the refusals);
managers upload the evaluation sets no prompt may match."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from annotation.api.permissions import project_for
from annotation.api.views.base import BaseApi, errors
from annotation.models import WRITING_CATEGORIES, EvalSet
from annotation.services.hygiene import eval_set_upload, prompt_write, written_prompts_mine

WRITING = ["writing"]


class WrittenPromptSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    text = serializers.CharField(help_text="As stored: personal information redacted when the project says so.")
    category = serializers.CharField()
    purpose = serializers.CharField(help_text="helpful, or red_team in a red-team project.")
    responses = serializers.SerializerMethodField(help_text="Responses generated for it so far.")
    redacted = serializers.SerializerMethodField(help_text="Kinds of personal information replaced.")
    created_at = serializers.DateTimeField()

    def get_responses(self, prompt) -> int:
        n = getattr(prompt, "n_responses", None)  # annotated by written_prompts_mine
        return prompt.responses.count() if n is None else n

    def get_redacted(self, prompt) -> list[str]:
        return list(prompt.metadata.get("redacted", []))


class RefusalSerializer(serializers.Serializer):
    class Reason(serializers.Serializer):
        code = serializers.CharField(help_text="cap, pii, near_duplicate or contaminated.")
        message = serializers.CharField()

    category = serializers.CharField()
    reasons = Reason(many=True)
    created_at = serializers.DateTimeField()


class WrittenPromptListApi(BaseApi):
    class OutputSerializer(serializers.Serializer):
        count = serializers.IntegerField(help_text="My written prompts in this project.")
        cap = serializers.IntegerField(help_text="At most this many per author (0: no cap).")
        prompts = WrittenPromptSerializer(many=True, help_text="The newest 200.")
        refusals = RefusalSerializer(many=True, help_text="The newest 200 (their texts are not kept).")

    @extend_schema(
        operation_id="written_prompts_mine", tags=WRITING, responses={200: OutputSerializer, **errors(403, 404)}
    )  # fmt: skip
    def get(self, request, slug: str):
        """My written prompts in this project and my refused attempts, with why."""
        project = project_for(request, slug)
        mine = written_prompts_mine(project=project, author=request.user)
        return Response(WrittenPromptListApi.OutputSerializer(mine).data)


class WrittenPromptCreateApi(BaseApi):
    class InputSerializer(serializers.Serializer):
        text = serializers.CharField(max_length=50_000, trim_whitespace=False)
        category = serializers.ChoiceField(choices=WRITING_CATEGORIES, help_text="InstructGPT's use-case categories.")

    @extend_schema(
        operation_id="written_prompt_create", tags=WRITING, request=InputSerializer,
        responses={201: WrittenPromptSerializer, **errors(400, 403, 404)},
        description="Write a prompt for the project (its `writing_mode` must be prompts or red_team). The hygiene "
        "checks run first: a refusal is a 400 whose `errors` say why (cap, personal information, near duplicate, "
        "evaluation set) and stores no prompt. Personal information may instead be redacted (the project's "
        "`pii_policy`).",
    )  # fmt: skip
    def post(self, request, slug: str):
        project = project_for(request, slug)
        data = WrittenPromptCreateApi.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        prompt = prompt_write(project=project, author=request.user, **data.validated_data)
        return Response(WrittenPromptSerializer(prompt).data, status=status.HTTP_201_CREATED)


class EvalSetSerializer(serializers.Serializer):
    name = serializers.CharField()
    filename = serializers.CharField()
    prompts = serializers.SerializerMethodField(help_text="How many evaluation prompts it holds.")
    matched_prompts = serializers.SerializerMethodField(
        help_text="How many of the project's prompts matched one of the set's when it was uploaded (left out of "
        "exports)."
    )
    matches = serializers.SerializerMethodField(
        help_text='The first 100 matches: [{"prompt": id, "item": 1-based number in the set, "similarity": 0..1}].'
    )
    created_at = serializers.DateTimeField()

    def get_prompts(self, eval_set) -> int:
        return len(eval_set.prompts)

    def get_matched_prompts(self, eval_set) -> int:
        return len(eval_set.matches)

    def get_matches(self, eval_set) -> list[dict]:
        return eval_set.matches[:100]


class EvalSetListApi(BaseApi):
    @extend_schema(
        operation_id="eval_set_list", tags=WRITING, responses={200: EvalSetSerializer(many=True), **errors(403, 404)}
    )  # fmt: skip
    def get(self, request, slug: str):
        """The project's evaluation sets (managers)."""
        project = project_for(request, slug, manage=True)
        return Response(EvalSetSerializer(EvalSet.objects.filter(project=project), many=True).data)


class EvalSetUploadApi(BaseApi):
    parser_classes = [MultiPartParser, FormParser]

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200)
        file = serializers.FileField(help_text='JSON lines ({"prompt": ...} or a string) or .txt, one prompt a line.')

    @extend_schema(
        operation_id="eval_set_upload", tags=WRITING, request={"multipart/form-data": InputSerializer},
        responses={201: EvalSetSerializer, **errors(400, 403, 404)},
        description="Upload (or replace, by name) an evaluation set: prompts that must never be trained on. A new "
        "prompt (written or imported) matching one, exactly after normalisation or at the project's near-duplicate "
        "threshold, is refused. The project's prompts that already match one are listed (`matched_prompts`, "
        "`matches`) and left out of exports. Managers and admins.",
    )  # fmt: skip
    def post(self, request, slug: str):
        project = project_for(request, slug, manage=True)
        data = EvalSetUploadApi.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        eval_set = eval_set_upload(
            project=project, name=data.validated_data["name"], filename=upload.name, data=upload.read(),
            created_by=request.user,
        )  # fmt: skip
        return Response(EvalSetSerializer(eval_set).data, status=status.HTTP_201_CREATED)
