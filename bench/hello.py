"""The baseline web app for bench/api.py: one JSON endpoint, the same Flask and gunicorn."""

from flask import Flask, jsonify, request


def create_app() -> Flask:
    app = Flask("hello")

    @app.post("/hello")
    def hello():
        request.get_json()
        return jsonify({"id": "hello", "state": "pending"}), 202

    return app
