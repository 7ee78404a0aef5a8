"""Token authentication that records when a token was last used."""

from rest_framework.authentication import TokenAuthentication

from annotation.services.tokens import token_touch


class TrackedTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, key):
        user, token = super().authenticate_credentials(key)
        token_touch(user=user, key=token.key)
        return user, token
