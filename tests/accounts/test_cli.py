"""The accounts commands of the operations contract (product.md, "Operations contract")."""

from __future__ import annotations


def test_create_superuser_from_environment_and_prompt(app, monkeypatch, client):
    runner = app.test_cli_runner()
    monkeypatch.setenv("PASSWORD", "operator-pass-1")
    result = runner.invoke(args=["create-superuser", "ops"])
    assert result.exit_code == 0, result.output
    assert "operator ops created" in result.output
    r = client.post("/api/v1/auth/token", json={"username": "ops", "password": "operator-pass-1"})
    assert r.status_code == 201
    # Without PASSWORD it prompts (twice, to confirm); a short password is refused.
    monkeypatch.delenv("PASSWORD")
    result = runner.invoke(args=["create-superuser", "ops2"], input="short\nshort\n")
    assert result.exit_code != 0 and "10 characters" in result.output
    for refused, _why in (("password123", "too common"), ("ops2ops2ops2", "simple"), ("1234567890", "too common")):
        result = runner.invoke(args=["create-superuser", "ops2"], input=f"{refused}\n{refused}\n")
        assert result.exit_code != 0, refused
    result = runner.invoke(args=["create-superuser", "ops2"], input="ops2\nops2\n")
    assert result.exit_code != 0 and "username" in result.output
    result = runner.invoke(args=["create-superuser", "ops2"], input="long-enough-9\nlong-enough-9\n")
    assert result.exit_code == 0, result.output
    token = client.post("/api/v1/auth/token", json={"username": "ops2", "password": "long-enough-9"}).get_json()[
        "token"
    ]
    assert client.get("/api/v1/users", headers={"Authorization": f"Bearer {token}"}).status_code == 200
