def test_healthz_answers_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_checks_database_and_broker(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"database": True, "broker": True}


def test_readyz_answers_503_when_the_database_is_down(client, monkeypatch):
    from integration_service.api import health

    monkeypatch.setattr(health, "_database_ok", lambda: False)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"] is False
