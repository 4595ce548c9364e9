"""Terms for a post's taxonomies: ids given as ids or names, names looked up (and created when
missing) under the taxonomy's route, each found id cached per client."""

from __future__ import annotations

import html
from typing import Any

from ..base import PlatformError
from .mapping import CORE_NAMESPACE
from .structure import StructureMixin


class TermsMixin(StructureMixin):
    """Term lookup and creation (``/wp/v2/categories``, ``/wp/v2/tags``, custom taxonomies)."""

    def _init_caches(self) -> None:
        super()._init_caches()
        self._term_cache: dict[tuple[str, str], int] = {}

    def _taxonomy_route(self, rest_base: str) -> str:
        try:
            taxonomies = self._load_taxonomies()
        except PlatformError:
            taxonomies = {}
        for item in taxonomies.values():
            if item.get("rest_base") == rest_base:
                return f"{item.get('rest_namespace') or CORE_NAMESPACE}/{rest_base}"
        return f"{CORE_NAMESPACE}/{rest_base}"

    def _term_ids(self, rest_base: str, values: list[Any]) -> list[int]:
        """Term ids for ids or names; names are looked up and created when missing."""
        ids: list[int] = []
        for value in values:
            if isinstance(value, bool):
                continue
            if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
                ids.append(int(value))
            elif isinstance(value, str) and value.strip():
                ids.append(self._term_id(rest_base, value.strip()))
        return list(dict.fromkeys(ids))

    def _term_id(self, rest_base: str, name: str) -> int:
        cache_key = (rest_base, name.lower())
        if cache_key in self._term_cache:
            return self._term_cache[cache_key]
        route = self._taxonomy_route(rest_base)
        found = self._json(
            self.call(
                "GET",
                route,
                params={"search": name, "per_page": 100, "_fields": "id,name,slug"},
                auth=self._default_auth(),
            ),
            f"the {rest_base} search",
        )
        for term in found if isinstance(found, list) else []:
            if isinstance(term, dict) and (
                html.unescape(str(term.get("name", ""))).lower() == name.lower()
                or str(term.get("slug", "")).lower() == name.lower()
            ):
                self._term_cache[cache_key] = int(term["id"])
                return self._term_cache[cache_key]
        response = self.call("POST", route, json_body={"name": name}, auth="app")
        data = response.json_or_none()
        if response.status_code == 400 and isinstance(data, dict) and data.get("code") == "term_exists":
            term_id = (data.get("data") or {}).get("term_id")
            if isinstance(term_id, int):
                self._term_cache[cache_key] = term_id
                return term_id
        created = self._json(response, f"creating the {rest_base} term {name!r}")
        self._term_cache[cache_key] = int(created["id"])
        return self._term_cache[cache_key]
