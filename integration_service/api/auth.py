"""Access tokens for frontend users."""

from __future__ import annotations

from flask import current_app
from flask_limiter.util import get_remote_address

from ..auth import issue_access_token, verify_user_password
from ..errors import NotAuthenticated
from ..extensions import limiter
from ..schemas import TokenRequestSchema, TokenResponseSchema
from .base import ApiBlueprint

blp = ApiBlueprint("auth", __name__, url_prefix="/api/v1/auth", description="Access tokens")


@blp.route("/token/", methods=["POST"])
@limiter.limit(lambda: current_app.config["RATELIMIT_AUTH"], scope="auth_token", key_func=get_remote_address)
@blp.arguments(TokenRequestSchema)
@blp.response(200, TokenResponseSchema)
@blp.alt_response(401, description="Wrong credentials, inactive user or suspended account")
def issue_token(credentials: dict):
    user = verify_user_password(credentials["email"], credentials["password"])
    if user is None:
        raise NotAuthenticated("The email or password is not correct.")
    if not user.is_active or user.account.is_suspended:
        raise NotAuthenticated("The user is inactive or the account is suspended.")
    token, ttl = issue_access_token(user)
    return {"access_token": token, "token_type": "Bearer", "expires_in": ttl}
