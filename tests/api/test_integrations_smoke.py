URL = "/api/v1/integration/integrations/"


def test_create_list_retrieve_update_delete(editor_client, site):
    created = editor_client.post(URL, json={"site_id": site.id, "platform": "wordpress", "api_key": site.plain_api_key})
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["platform_type"] == "cms"
    assert body["config_json"] == {"site_url": site.url}
    assert "credentials_json" not in body
    assert body["api_key"] != site.plain_api_key and body["api_key"].endswith(site.plain_api_key[-4:])

    listed = editor_client.get(URL.rstrip("/"))
    assert listed.status_code == 200
    assert listed.get_json()["count"] == 1

    item = f"{URL}{body['id']}/"
    patched = editor_client.patch(item, json={"sync_enabled": False})
    assert patched.status_code == 200 and patched.get_json()["sync_enabled"] is False
    assert editor_client.delete(item).status_code == 204
    assert editor_client.get(item).status_code == 404


def test_validation_error_has_the_contract_shape(editor_client, site):
    response = editor_client.post(URL, json={"site_id": site.id, "platform": "nope"})
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"]["code"] == "validation_error"
    assert "platform" in body["error"]["details"]
    assert body["request_id"]
