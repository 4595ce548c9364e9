"""Reconcile and the push lookup against the real WordPress (scripts/wordpress-e2e.sh), Celery eager."""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import replace
from datetime import timedelta

import pytest
import requests

from integration_service.extensions import db
from integration_service.models import Content, utcnow
from integration_service.platforms.base import PostInput
from integration_service.platforms.http_types import HttpSettings
from integration_service.platforms.wordpress.client import WordPressClient
from integration_service.timeutil import iso
from tests.e2e.test_sync_e2e import sync

pytestmark = pytest.mark.e2e


def php_json(wordpress_site, code: str):
    from tests.support.wordpress import eval_php

    return json.loads(eval_php(wordpress_site.name, code).strip().splitlines()[-1])


def row(site_id: int, post_id: int) -> Content:
    return db.session.scalar(db.select(Content).where(Content.site_id == site_id, Content.external_id == str(post_id)))


def test_reconcile_finds_a_deleted_and_a_back_dated_post(editor_client, integration, site, wordpress_site):
    marker = uuid.uuid4().hex[:8]
    ids = php_json(
        wordpress_site,
        f"""
        $a = wp_insert_post(['post_title' => 'Doomed {marker}', 'post_status' => 'publish']);
        $b = wp_insert_post(['post_title' => 'Quiet {marker}', 'post_status' => 'publish']);
        echo json_encode([$a, $b]);
        """,
    )
    doomed, quiet = ids
    try:
        assert sync(editor_client, integration, "from_external", full=True).status == "success"
        php_json(
            wordpress_site,
            f"""
            global $wpdb;
            wp_delete_post({doomed}, true);
            wp_update_post(['ID' => {quiet}, 'post_title' => 'Rewritten {marker}']);
            // Set the modification time back, as an import or a direct database edit does.
            $wpdb->update($wpdb->posts, ['post_modified_gmt' => '2020-01-01 00:00:00',
                'post_modified' => '2020-01-01 00:00:00'], ['ID' => {quiet}]);
            clean_post_cache({quiet});
            echo json_encode(get_post({quiet})->post_modified_gmt);
            """,
        )
        incremental = sync(editor_client, integration, "from_external")
        assert incremental.status == "success", incremental.error_message
        assert row(site.id, quiet).title == f"Quiet {marker}"  # invisible to modified_after
        assert row(site.id, doomed).external_status == "publish"

        event = sync(editor_client, integration, "reconcile")

        assert event.status == "success", event.error_message
        assert (event.details["missing"], event.details["refetched"]) == (1, 1), event.details
        stored = db.session.scalar(db.select(db.func.count(Content.id)).where(Content.site_id == site.id))
        assert event.details["listed"] == stored - 1
        assert event.details["unchanged"] == stored - 2
        assert row(site.id, doomed).external_status == "missing"
        assert row(site.id, quiet).title == f"Rewritten {marker}"
        assert row(site.id, quiet).external_modified_gmt.year == 2020
    finally:
        php_json(wordpress_site, f"wp_delete_post({doomed}, true); wp_delete_post({quiet}, true); echo '1';")


def test_the_plugin_finds_the_post_of_an_interrupted_push(editor_client, factory, integration, site, wordpress_site):
    php_json(wordpress_site, f"update_option(IGNY8_BRIDGE_OPT_API_KEY, '{site.plain_api_key}'); echo '1';")
    # A content id no other test uses (posts of the shared site carry small ones).
    content = factory.content(
        site, id=random.randint(10**8, 2 * 10**9), title=f"Interrupted {uuid.uuid4().hex[:8]}", status="published"
    )
    # What the dead worker left: WordPress created the post, the service never stored its id.
    created = requests.post(
        wordpress_site.rest("wp/v2/posts"),
        json={"title": content.title, "status": "publish", "meta": {"_igny8_content_id": content.id}},
        auth=wordpress_site.app_password_auth,
        timeout=30,
    )
    assert created.status_code == 201, created.text
    post_id = created.json()["id"]
    try:
        route = wordpress_site.rest("igny8/v1/posts")
        key = {"X-API-Key": site.plain_api_key}
        answer = requests.get(route, params={"content_id": content.id}, headers=key, timeout=30)
        assert answer.status_code == 200 and [item["id"] for item in answer.json()] == [post_id], answer.text
        wrong = requests.get(route, params={"content_id": content.id}, headers={"X-API-Key": "wrong"}, timeout=30)
        assert wrong.status_code == 401
        bad = requests.get(route, params={"content_id": "x"}, headers=key, timeout=30)
        assert bad.status_code == 400

        client = WordPressClient(
            wordpress_site.url,
            {"api_key": site.plain_api_key},
            HttpSettings(allow_private=True, max_retries=0),
        )
        probe = PostInput(content_type="post", title="", content_html="", status="published", content_id=content.id)
        assert client.find_pushed_post(probe, None) == str(post_id)
        # Without the plugin's key, core REST: the exact title among posts modified since the intent.
        core = WordPressClient(
            wordpress_site.url,
            {"username": wordpress_site.admin_user, "app_password": wordpress_site.app_password},
            HttpSettings(allow_private=True, max_retries=0),
        )
        titled = PostInput(content_type="post", title=content.title, content_html="", status="published")
        assert core.find_pushed_post(titled, utcnow() - timedelta(minutes=1)) == str(post_id)
        assert core.find_pushed_post(replace(titled, title=content.title + " 2"), utcnow()) is None

        content.push_intent = {"at": iso(utcnow()), "title": content.title, "job_id": None}
        db.session.commit()
        event = sync(editor_client, integration, "to_external")

        assert event.status == "success", event.error_message
        db.session.refresh(content)
        assert content.external_id == str(post_id) and content.push_intent is None
        again = requests.get(route, params={"content_id": content.id}, headers=key, timeout=30)
        assert [item["id"] for item in again.json()] == [post_id]  # no second post
    finally:
        php_json(wordpress_site, f"wp_delete_post({post_id}, true); echo '1';")
