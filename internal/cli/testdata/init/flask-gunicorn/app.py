"""A tiny Flask app for gatehouse init's test: gunicorn serves it on the
PORT gatehouse gives it (-b 127.0.0.1:$PORT) and it answers GET / with a
known body."""
from flask import Flask

app = Flask(__name__)


@app.route("/")
def index():
    return "hello from flask\n", 200, {"Content-Type": "text/plain"}
