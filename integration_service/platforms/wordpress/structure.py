"""The site's structure, loaded once per client: its REST-enabled post types and taxonomies
(``fetch_structure``), the route of a post type, and which taxonomies (by REST base) a post type
carries."""

from __future__ import annotations

from typing import Any

from ..base import PlatformError
from .mapping import CORE_NAMESPACE, structure_entry
from .rest import WordPressRest


class StructureMixin(WordPressRest):
    """Post types and taxonomies (``/wp/v2/types``, ``/wp/v2/taxonomies``), cached per client."""

    def _init_caches(self) -> None:
        super()._init_caches()
        self._types: dict[str, dict[str, Any]] | None = None
        self._taxonomies: dict[str, dict[str, Any]] | None = None
        self._taxonomy_bases_by_type: dict[str, dict[str, str]] = {}

    def _load_types(self) -> dict[str, dict[str, Any]]:
        if self._types is None and (cached := self.remembered_shape().types) is not None:
            self._types, self._shape_cached = cached, True
        if self._types is None:
            data = self._json(self.call("GET", f"{CORE_NAMESPACE}/types", auth=self._default_auth()), "/wp/v2/types")
            if not isinstance(data, dict):
                raise PlatformError("WordPress answered /wp/v2/types with an unexpected shape.", stage="http")
            self._types = {slug: item for slug, item in data.items() if isinstance(item, dict)}
            self.remember_shape(types=self._types)
        return self._types

    def _load_taxonomies(self) -> dict[str, dict[str, Any]]:
        if self._taxonomies is None and (cached := self.remembered_shape().taxonomies) is not None:
            self._taxonomies, self._shape_cached = cached, True
        if self._taxonomies is None:
            data = self._json(
                self.call("GET", f"{CORE_NAMESPACE}/taxonomies", auth=self._default_auth()), "/wp/v2/taxonomies"
            )
            if not isinstance(data, dict):
                raise PlatformError("WordPress answered /wp/v2/taxonomies with an unexpected shape.", stage="http")
            self._taxonomies = {slug: item for slug, item in data.items() if isinstance(item, dict)}
            self.remember_shape(taxonomies=self._taxonomies)
        return self._taxonomies

    def fetch_structure(self) -> dict[str, Any]:
        types = self._load_types()
        taxonomies = self._load_taxonomies()
        return {
            "post_types": {slug: structure_entry(slug, item, "taxonomies") for slug, item in types.items()},
            "taxonomies": {slug: structure_entry(slug, item, "types") for slug, item in taxonomies.items()},
        }

    def _type_route(self, content_type: str) -> str:
        types = self._load_types()
        item = types.get(content_type)
        if item is None:
            raise PlatformError(
                f"WordPress has no REST-enabled post type {content_type!r} (known: {', '.join(sorted(types))}).",
                stage="http",
            )
        return f"{item.get('rest_namespace') or CORE_NAMESPACE}/{item.get('rest_base') or content_type}"

    def _taxonomy_bases(self, content_type: str) -> dict[str, str]:
        """rest_base -> taxonomy slug for the taxonomies of a post type (categories/tags for posts).
        Computed once per type: it runs for every post mapped, and a failed taxonomy lookup must
        not be retried over HTTP for each one."""
        bases = self._taxonomy_bases_by_type.get(content_type)
        if bases is None:
            bases = self._taxonomy_bases_by_type[content_type] = self._compute_taxonomy_bases(content_type)
        return bases

    def _compute_taxonomy_bases(self, content_type: str) -> dict[str, str]:
        item = self._load_types().get(content_type) or {}
        slugs = [slug for slug in item.get("taxonomies") or [] if isinstance(slug, str)]
        if not slugs:
            return {}
        try:
            taxonomies = self._load_taxonomies()
        except PlatformError:
            taxonomies = {}
        defaults = {"category": "categories", "post_tag": "tags"}
        return {(taxonomies.get(slug, {}).get("rest_base") or defaults.get(slug, slug)): slug for slug in slugs}
