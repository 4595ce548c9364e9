"""flask-smorest plumbing: the Api (documenting the one error envelope) and the Blueprint every
view module uses (its arguments parser answers validation errors with 400)."""

from __future__ import annotations

from flask import current_app
from flask_smorest import Api, Blueprint
from webargs import core
from webargs.flaskparser import FlaskParser, abort, is_json_request

from ..errors import ApiErrorSchema
from ..inputs import IdConverter, id_converter_schema
from ..serialization import JSONTooDeep


class ServiceApi(Api):
    """flask-smorest's Api without its own error handlers: ``errors.py`` registers the one
    envelope of the contract for every error, and the docs describe that envelope."""

    ERROR_SCHEMA = ApiErrorSchema

    def _register_error_handlers(self) -> None:
        return None


class ArgumentsParser(FlaskParser):
    DEFAULT_VALIDATION_STATUS = 400  # the contract answers validation errors with 400

    def _raw_load_json(self, req):  # type: ignore[no-untyped-def]
        # Parse with the app's JSON provider (webargs has its own json.loads), so the depth bound
        # of serialization.ServiceJSONProvider holds for every schema-loaded body too.
        if not is_json_request(req):
            return core.missing
        try:
            return current_app.json.loads(req.get_data(cache=True))
        except JSONTooDeep as exc:
            abort(400, exc=exc, messages={"json": [str(exc)]})


class ApiBlueprint(Blueprint):
    ARGUMENTS_PARSER = ArgumentsParser()


rest_api = ServiceApi()
rest_api.register_converter(IdConverter, id_converter_schema)  # documents <id:...> path parameters
