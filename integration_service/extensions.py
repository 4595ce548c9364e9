"""Extension singletons, bound to an app in ``create_app`` with ``init_app``."""

from __future__ import annotations

from flask import current_app, g, request
from flask_limiter import Limiter
from flask_migrate import Migrate
from flask_smorest import Api, Blueprint
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData
from webargs import core
from webargs.flaskparser import FlaskParser, abort, is_json_request

from .errors import ApiErrorSchema
from .inputs import IdConverter, JSONTooDeep, id_converter_schema

# Named constraints keep Alembic migrations identical on PostgreSQL and SQLite.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


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
        # of inputs.BoundedJSONProvider holds for every schema-loaded body too.
        if not is_json_request(req):
            return core.missing
        try:
            return current_app.json.loads(req.get_data(cache=True))
        except JSONTooDeep as exc:
            abort(400, exc=exc, messages={"json": [str(exc)]})


class ApiBlueprint(Blueprint):
    ARGUMENTS_PARSER = ArgumentsParser()


def rate_limit_key() -> str:
    principal = getattr(g, "principal", None)
    if principal is not None:
        return principal.rate_limit_key
    return request.remote_addr or "unknown"


db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING_CONVENTION))
migrate = Migrate()
rest_api = ServiceApi()
rest_api.register_converter(IdConverter, id_converter_schema)  # documents <id:...> path parameters
limiter = Limiter(key_func=rate_limit_key)
