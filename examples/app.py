from typing import Annotated

from fastapi import Depends, FastAPI

from velvetrope import Principal, Velvetrope

auth = Velvetrope()  # VELVETROPE_* settings; VELVETROPE_PUBLIC_ORIGIN is required
app = FastAPI()
auth.install(app)  # /auth/*, the error mapping (401/403/409...), start and stop

Who = Annotated[Principal, Depends(auth.principal)]


@app.get("/orders")
async def orders(who: Who) -> dict[str, object]:
    return {"user": who.user_id, "email": who.email, "claims": dict(who.claims)}


@app.post("/orders", status_code=201)
async def place_order(who: Who) -> dict[str, str]:  # cookie callers need the CSRF token
    return {"placed_by": who.user_id}
