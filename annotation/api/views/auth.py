"""Signing in for an API token (throttled with the login page), and rotating or revoking tokens: each user their
own, admins anyone's."""

from django.contrib.auth import authenticate, get_user_model
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle

from annotation.api.permissions import IsAdmin
from annotation.api.views.base import BaseApi, errors
from annotation.auth import lockout_response
from annotation.services.tokens import token_get_or_create, token_info_get, token_revoke, token_rotate

AUTH = ["auth"]
BAD_CREDENTIALS = "Unable to log in with provided credentials."


class SignInThrottle(AnonRateThrottle):
    """Besides the lockout (django-axes), at most 20 token requests a minute from one address."""

    scope = "sign_in"
    rate = "20/min"


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField()


class TokenInfoSerializer(serializers.Serializer):
    exists = serializers.BooleanField()
    created = serializers.DateTimeField(allow_null=True)
    last_used_at = serializers.DateTimeField(allow_null=True, help_text="Updated at most once a minute.")


class AuthTokenObtainApi(BaseApi):
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [SignInThrottle]

    class InputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        password = serializers.CharField(max_length=4096, trim_whitespace=False)

    @extend_schema(
        operation_id="auth_token", tags=AUTH, request=InputSerializer,
        responses={200: TokenSerializer, 429: OpenApiResponse(description="Locked out or throttled."), **errors(400)},
    )  # fmt: skip
    def post(self, request):
        """My API token, for a user name and password. Repeated failures lock the user name and the address."""
        data = AuthTokenObtainApi.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        http_request = request._request  # django-axes tracks the plain HttpRequest
        user = authenticate(http_request, **data.validated_data)
        if getattr(http_request, "axes_locked_out", False):
            return lockout_response(http_request, credentials={"username": data.validated_data["username"]})
        if user is None:
            raise serializers.ValidationError({"non_field_errors": [BAD_CREDENTIALS]})
        return Response({"token": token_get_or_create(user=user).key})


class TokenMineApi(BaseApi):
    @extend_schema(operation_id="auth_token_mine", tags=AUTH, responses={200: TokenInfoSerializer, **errors()})
    def get(self, request):
        """Whether I have a token, when it was created and when it was last used (never the key)."""
        return Response(TokenInfoSerializer(token_info_get(user=request.user)).data)

    @extend_schema(
        operation_id="auth_token_revoke_mine", tags=AUTH,
        responses={204: OpenApiResponse(description="Revoked."), **errors()},
    )  # fmt: skip
    def delete(self, request):
        """Revoke my token: it stops working at once."""
        token_revoke(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenRotateMineApi(BaseApi):
    @extend_schema(operation_id="auth_token_rotate_mine", tags=AUTH, request=None,
                   responses={200: TokenSerializer, **errors()})  # fmt: skip
    def post(self, request):
        """A new token for me; the old one stops working at once."""
        return Response({"token": token_rotate(user=request.user).key})


class UserTokenApi(BaseApi):
    permission_classes = [IsAdmin]

    @extend_schema(operation_id="auth_token_info", tags=AUTH, responses={200: TokenInfoSerializer, **errors(403, 404)})
    def get(self, request, username: str):
        """A user's token: created and last used (admins)."""
        user = get_object_or_404(get_user_model(), username=username)
        return Response(TokenInfoSerializer(token_info_get(user=user)).data)

    @extend_schema(
        operation_id="auth_token_revoke", tags=AUTH,
        responses={204: OpenApiResponse(description="Revoked."), **errors(403, 404)},
    )  # fmt: skip
    def delete(self, request, username: str):
        """Revoke a user's token (admins)."""
        token_revoke(user=get_object_or_404(get_user_model(), username=username))
        return Response(status=status.HTTP_204_NO_CONTENT)


class UserTokenRotateApi(BaseApi):
    permission_classes = [IsAdmin]

    @extend_schema(operation_id="auth_token_rotate", tags=AUTH, request=None,
                   responses={200: TokenSerializer, **errors(403, 404)})  # fmt: skip
    def post(self, request, username: str):
        """A new token for a user, returned once (admins); the old one stops working at once."""
        return Response({"token": token_rotate(user=get_object_or_404(get_user_model(), username=username)).key})
