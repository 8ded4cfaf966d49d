"""A tiny FastAPI app for gatehouse init's test: uvicorn serves it on the
PORT gatehouse gives it (--port $PORT) and it answers GET / with a known
body."""
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

app = FastAPI()


@app.get("/", response_class=PlainTextResponse)
def index():
    return "hello from fastapi\n"
