"""A FastAPI app that knows nothing of the prefix gatehouse serves it
under: its routes start at /, as an app behind nginx's proxy_pass .../
or Traefik's StripPrefix expects."""
from fastapi import FastAPI, Request

app = FastAPI()


@app.get("/items")
def items(request: Request):
    return {"path": request.url.path, "prefix": request.headers.get("x-forwarded-prefix", "")}


@app.get("/items/{item}")
def item(item: str, request: Request):
    return {"path": request.url.path, "item": item}
