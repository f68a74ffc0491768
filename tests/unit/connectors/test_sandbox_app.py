"""The sandbox app in-process (ASGI transport): dedupe, faults, Z-API/SMS contracts, source feeds."""

from __future__ import annotations

import httpx

from connectors.sandbox.app import SandboxApp


def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=SandboxApp(seed=1)), base_url="http://sandbox")


async def test_records_and_dedupes_by_idempotency_key() -> None:
    async with client() as c:
        for key in ("a", "b", "a", "a"):
            r = await c.post("/crm/api/leads", json={"k": key}, headers={"Idempotency-Key": key})
            assert r.status_code == 200
        got = (await c.get("/_control/crm/received")).json()
    assert got["unique"] == 2 and got["duplicates"] == 2 and got["requests"] == 4
    assert got["duplicate_keys"] == {"a": 3}
    assert [i["body"] for i in got["items"]] == [{"k": "a"}, {"k": "b"}]


async def test_fault_injection_and_reset() -> None:
    async with client() as c:
        await c.post("/_control/crm", json={"fail_next": 2, "status_code": 429, "retry_after": 3})
        first = await c.post("/crm/x", json={}, headers={"Idempotency-Key": "k"})
        assert first.status_code == 429 and first.headers["retry-after"] == "3"
        assert (await c.post("/crm/x", json={}, headers={"Idempotency-Key": "k"})).status_code == 429
        assert (await c.post("/crm/x", json={}, headers={"Idempotency-Key": "k"})).status_code == 200
        await c.post("/_control/crm", json={"down": True})
        down = await c.post("/crm/x", json={}, headers={"Idempotency-Key": "z"})
        assert down.status_code == 503 and down.json()["error"]
        await c.post(
            "/_control/crm", json={"down": False, "error_rate": 1.0, "status_code": 500, "body": {"error": "custom"}}
        )
        failed = await c.post("/crm/x", json={})
        assert failed.status_code == 500 and failed.json() == {"error": "custom"}
        bad = await c.post("/_control/crm", json={"nope": 1})
        assert bad.status_code == 400
        counts = (await c.get("/_control/crm/received")).json()
        assert counts["failed"] == 4 and counts["unique"] == 1
        await c.post("/_control/crm/reset")
        assert (await c.get("/_control/crm/received")).json()["requests"] == 0
        assert (await c.post("/crm/x", json={})).status_code == 200


async def test_zapi_and_sms_contracts() -> None:
    async with client() as c:
        ok = await c.post(
            "/whatsapp/instances/i/token/t/send-text",
            json={"phone": "5511999990000", "message": "oi"},
            headers={"Client-Token": "c"},
        )
        assert ok.status_code == 200 and {"zaapId", "messageId", "id"} <= set(ok.json())
        no_token = await c.post("/whatsapp/instances/i/token/t/send-text", json={"phone": "55", "message": "x"})
        assert no_token.status_code == 400 and "client-token" in no_token.json()["error"].lower()
        bad_phone = await c.post(
            "/whatsapp/instances/i/token/t/send-text",
            json={"phone": "+55 11", "message": "x"},
            headers={"Client-Token": "c"},
        )
        assert bad_phone.status_code == 400
        assert (await c.post("/whatsapp/wrong", json={}, headers={"Client-Token": "c"})).status_code == 404
        assert (await c.post("/sms/messages", json={"to": "5511999990000", "message": "oi"})).status_code == 200
        assert (await c.post("/sms/messages", json={"to": "5511999990000"})).status_code == 422


async def test_source_feed_paginates_by_watermark() -> None:
    items = [{"id": f"a{i}", "updated_at": f"2026-01-01T00:00:{i:02d}Z", "agenda_id": f"a{i}"} for i in range(5)]
    async with client() as c:
        seeded = await c.post("/_control/sources/crm/items", json={"path": "/api/agenda/changes", "items": items})
        assert seeded.json()["items"] == 5
        page = (await c.get("/sources/crm/api/agenda/changes", params={"since": "", "cursor": "", "limit": 2})).json()
        assert [i["id"] for i in page["items"]] == ["a0", "a1"] and page["next_cursor"]
        seen = [i["id"] for i in page["items"]]
        while page["next_cursor"]:
            page = (
                await c.get(
                    "/sources/crm/api/agenda/changes", params={"since": "", "cursor": page["next_cursor"], "limit": 2}
                )
            ).json()
            seen += [i["id"] for i in page["items"]]
        assert seen == ["a0", "a1", "a2", "a3", "a4"]
        newer = (
            await c.get("/sources/crm/api/agenda/changes", params={"since": "2026-01-01T00:00:02+00:00", "limit": 10})
        ).json()
        assert [i["id"] for i in newer["items"]] == ["a3", "a4"] and newer["next_cursor"] is None
        await c.post("/_control/sources/crm", json={"fail_next": 1, "status_code": 503})
        assert (await c.get("/sources/crm/api/agenda/changes")).status_code == 503
        await c.delete("/_control/sources/crm/items")
        assert (await c.get("/sources/crm/api/agenda/changes")).json()["items"] == []
