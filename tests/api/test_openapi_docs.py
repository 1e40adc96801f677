"""What browsers fetch besides the API: the OpenAPI document Swagger UI shows at /docs, and\nthe favicon."""

import re


def test_summaries_and_descriptions_are_markdown_not_rst(client):
    spec = client.get("/openapi.json").get_json()
    texts = [
        (path, method, operation.get(part, ""))
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if isinstance(operation, dict)
        for part in ("summary", "description")
    ]
    assert [text for text in texts if "``" in text[2]] == []
    assert any(re.search(r"`[^`]+`", text) for *_, text in texts)


def test_the_favicon_is_served(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response.mimetype == "image/svg+xml"
    assert response.data.startswith(b"<svg")
