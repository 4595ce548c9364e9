"""flask-smorest plumbing: the Api (documenting the one error envelope) and the Blueprint every
view module uses (its arguments parser answers validation errors with 400)."""

from __future__ import annotations

from flask_smorest import Api, Blueprint
from webargs.flaskparser import FlaskParser

from ..errors import ApiErrorSchema


class ServiceApi(Api):
    """flask-smorest's Api without its own error handlers: ``errors.py`` registers the one
    envelope of the contract for every error, and the docs describe that envelope."""

    ERROR_SCHEMA = ApiErrorSchema

    def _register_error_handlers(self) -> None:
        return None


class ArgumentsParser(FlaskParser):
    DEFAULT_VALIDATION_STATUS = 400  # the contract answers validation errors with 400


class ApiBlueprint(Blueprint):
    ARGUMENTS_PARSER = ArgumentsParser()


rest_api = ServiceApi()
