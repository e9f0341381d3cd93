"""Account hooks through HTTP: every way to sign out reaches the sign-out hooks once."""

from fastapi import FastAPI

from velvetrope import AccountEvent, Velvetrope
from velvetrope.testing import app_client, bearer_for, new_user, settings_for_tests, sign_in


def app_recording(seen: list[AccountEvent]) -> FastAPI:
    auth = Velvetrope(settings_for_tests())

    @auth.hooks.on_sign_in
    @auth.hooks.on_sign_out
    async def record(event: AccountEvent) -> None:
        seen.append(event)

    app = FastAPI()
    auth.install(app)
    return app


async def test_sign_outs_by_cookie_by_token_and_by_device_each_run_the_hooks() -> None:
    seen: list[AccountEvent] = []
    app = app_recording(seen)
    async with app_client(app) as client:
        ann = await new_user(client)
        await sign_in(client, ann)
        cookie_device = seen[-1].device
        headers = await bearer_for(ann)
        assert (await client.post("/auth/logout", headers=headers)).status_code == 204
        await sign_in(client, ann)
        async with app_client(app) as phone:  # a second browser, while the first runs
            await sign_in(phone, ann)
            other = seen[-1].device
        assert (await client.delete(f"/auth/sessions/{other}")).status_code == 204
        assert (await client.post("/auth/logout")).status_code == 204
    kinds = [(e.kind, e.method) for e in seen]
    assert kinds == [
        ("signed_in", "session"),
        ("signed_out", "bearer"),
        ("signed_in", "session"),
        ("signed_in", "session"),
        ("signed_out", ""),
        ("signed_out", "session"),
    ]
    assert seen[4].device == other
    assert seen[5].device not in {cookie_device, other}
    assert all(e.user_id == ann.id and e.email == ann.email for e in seen)
