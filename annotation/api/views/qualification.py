"""Qualification through the API: a labeler's own state and feedback; managers list attempts and admit or refuse."""

from django.contrib.auth import get_user_model
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from annotation.api.permissions import project_for
from annotation.api.views.base import BaseApi, errors
from annotation.services.qualification import qualification_attempts, qualification_decide, qualification_state

QUALIFICATION = ["qualification"]


class QualificationItemSerializer(serializers.Serializer):
    prompt_id = serializers.IntegerField()
    prompt_text = serializers.CharField()
    my_order = serializers.CharField(help_text="'B > A = C' in the letters the labeler saw.")
    reference_order = serializers.CharField()
    agreement = serializers.FloatField(allow_null=True)
    flipped = serializers.ListField(child=serializers.CharField())
    passage_title = serializers.CharField()
    passage_text = serializers.CharField()


class QualificationStateSerializer(serializers.Serializer):
    required = serializers.BooleanField()
    status = serializers.CharField(help_text="'', passed, failed, admitted or refused.")
    qualified = serializers.BooleanField()
    done = serializers.IntegerField()
    total = serializers.IntegerField()
    score = serializers.FloatField(allow_null=True, help_text="Pairwise agreement with the references so far.")
    threshold = serializers.FloatField()
    items = QualificationItemSerializer(many=True)


class QualificationMineApi(BaseApi):
    @extend_schema(
        operation_id="qualification_mine", tags=QUALIFICATION,
        responses={200: QualificationStateSerializer, **errors(403, 404)},
    )  # fmt: skip
    def get(self, request, slug: str):
        """My qualification in this project: status, items ranked, score, and feedback per item."""
        project = project_for(request, slug)
        return Response(QualificationStateSerializer(qualification_state(project=project, labeler=request.user)).data)


class QualificationAttemptsApi(BaseApi):
    class Row(serializers.Serializer):
        labeler = serializers.CharField()
        status = serializers.CharField()
        score = serializers.FloatField(allow_null=True)
        done = serializers.IntegerField()
        total = serializers.IntegerField()
        at = serializers.DateTimeField(allow_null=True)

    @extend_schema(
        operation_id="qualification_attempts", tags=QUALIFICATION,
        responses={200: Row(many=True), **errors(403, 404)},
    )  # fmt: skip
    def get(self, request, slug: str):
        """Every labeler's qualification (managers)."""
        project = project_for(request, slug, manage=True)
        return Response(QualificationAttemptsApi.Row(qualification_attempts(project=project), many=True).data)


class QualificationDecideApi(BaseApi):
    class InputSerializer(serializers.Serializer):
        admit = serializers.BooleanField(help_text="true admits the labeler, false refuses them.")

    @extend_schema(
        operation_id="qualification_decide", tags=QUALIFICATION, request=InputSerializer,
        responses={200: QualificationStateSerializer, **errors(400, 403, 404)},
    )  # fmt: skip
    def post(self, request, slug: str, username: str):
        """Admit or refuse a labeler whatever their score (managers)."""
        project = project_for(request, slug, manage=True)
        user = get_object_or_404(get_user_model(), username=username)
        data = QualificationDecideApi.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        qualification_decide(project=project, labeler=user, admit=data.validated_data["admit"])
        return Response(QualificationStateSerializer(qualification_state(project=project, labeler=user)).data)
