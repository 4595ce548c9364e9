"""Webhook deliveries while PostgreSQL restarts (issue 12, section 6): no delivery is answered
200 without being applied, and the plugin's redelivery of a refused one applies it once.

The restart is of a throwaway cluster this test creates (initdb in a temporary directory, on a
free port), never of the machine's shared PostgreSQL.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator

import pytest

from config import TestingConfig
from integration_service import create_app
from integration_service.extensions import db
from integration_service.models import Content, WebhookDelivery
from tests.api.test_webhooks import deliver
from tests.e2e.service_server import free_port
from tests.factories import Factory

BINARIES = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
STATUS = "/api/v1/integration/webhooks/wordpress/status/"

pytestmark = pytest.mark.skipif(
    not BINARIES or os.geteuid() != 0 or shutil.which("runuser") is None,
    reason="needs PostgreSQL's server binaries and root (to run them as the postgres user)",
)


class Cluster:
    def __init__(self) -> None:
        self.bin = os.path.dirname(BINARIES[-1])
        self.dir = tempfile.mkdtemp(prefix="harden-pg-")
        shutil.chown(self.dir, "postgres", "postgres")
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True, timeout=60)

    def init(self) -> None:
        self._as_postgres(f"{self.bin}/initdb", "-D", f"{self.dir}/data", "-A", "trust", "-U", "postgres")

    def pg_ctl(self, action: str, *extra: str) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_postgres(
            f"{self.bin}/pg_ctl", "-D", f"{self.dir}/data", "-o", options, "-l", f"{self.dir}/log", "-w", *extra, action
        )

    def remove(self) -> None:
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                f"{self.bin}/pg_ctl",
                "-D",
                f"{self.dir}/data",
                "-m",
                "immediate",
                "stop",
            ],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    cluster = Cluster()
    try:
        cluster.init()
        cluster.pg_ctl("start")
        yield cluster
    finally:
        cluster.remove()


def test_webhooks_across_a_postgres_restart_are_applied_or_refused(cluster):
    app = create_app(TestingConfig, overrides={"SQLALCHEMY_DATABASE_URI": cluster.url})
    with app.app_context():
        db.create_all()
        factory = Factory(app)
        site = factory.site(factory.account())
        contents = [factory.content(site, title=f"c{i}", external_id=str(i + 1)).id for i in range(6)]
        api_key = site.plain_api_key
        client = app.test_client()

        answers: dict[str, tuple[int, int]] = {}  # webhook-id -> (status code, content id)

        def send(content_id: int, webhook_id: str | None = None) -> str:
            webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
            payload = {"post_id": contents.index(content_id) + 1, "post_status": "publish", "content_id": content_id}
            response = deliver(client, STATUS, api_key, payload, webhook_id=webhook_id)
            assert response.status_code in (200, 500, 503), response.get_data(as_text=True)
            assert response.get_json()["error" if response.status_code != 200 else "status"]
            answers[webhook_id] = (response.status_code, content_id)
            return webhook_id

        send(contents[0])
        cluster.pg_ctl("stop", "-m", "fast")
        refused = [send(content_id) for content_id in contents[1:3]]  # the database is down
        cluster.pg_ctl("start")
        time.sleep(0.5)
        for content_id in contents[3:]:
            send(content_id)
        # The plugin redelivers what was not answered 200, with the same webhook-id.
        for webhook_id in refused:
            assert answers[webhook_id][0] != 200
            send(answers[webhook_id][1], webhook_id=webhook_id)

        db.session.remove()
        applied = {row.webhook_id for row in db.session.scalars(db.select(WebhookDelivery))}
        for webhook_id, (status, content_id) in answers.items():
            content = db.session.get(Content, content_id)
            if status == 200:
                assert webhook_id in applied
                assert content.external_status == "publish", (webhook_id, content_id)
        assert all(db.session.get(Content, content_id).external_status == "publish" for content_id in contents)
        db.session.remove()
        db.engine.dispose()
