"""DRF-style page bodies: ``{"count", "next", "previous", "results"}``."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import request
from sqlalchemy import Select, func

from ..extensions import db


def paginate(query: Select, page: int, page_size: int, order_by: Any) -> dict[str, Any]:
    count = db.session.scalar(db.select(func.count()).select_from(query.order_by(None).subquery()))
    items = db.session.scalars(query.order_by(order_by).limit(page_size).offset((page - 1) * page_size)).all()
    return {
        "count": count,
        "next": _page_url(page + 1, page_size) if page * page_size < count else None,
        "previous": _page_url(page - 1, page_size) if page > 1 else None,
        "results": items,
    }


def _page_url(page: int, page_size: int) -> str:
    args = request.args.to_dict()
    args.update(page=str(page), page_size=str(page_size))
    return f"{request.base_url}?{urlencode(args)}"
