"""Token authentication that records when a token was last used."""

from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from annotation.hot_sql import user_for_token
from annotation.services.tokens import token_touch


class TrackedTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, key):
        # DRF's checks and messages, with the token and its user read by hand (annotation/hot_sql.py says why)
        user, token = user_for_token(key)
        if user is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        token_touch(user=user, key=token.key)
        return user, token
