"""``transfer-automl serve`` and ``transfer-automl token``: help, tokens, clear errors."""

from __future__ import annotations

from tests.server.conftest import create_token
from tests.test_cli import _one_error_line, cli


def test_help():
    for args in (["serve"], ["token", "create"]):
        proc = cli(*args, "--help")
        assert proc.returncode == 0 and "Usage" in proc.stdout


def test_tokens_are_created_listed_and_revoked(tmp_path):
    data = tmp_path / "srv"
    first, second = create_token(data, "erin", cli=True), create_token(data, "erin", cli=True)
    assert first != second and len(first) >= 40
    assert (data.stat().st_mode & 0o777, (data / "kb.sqlite").stat().st_mode & 0o777) == \
        (0o700, 0o600)  # owner-only: the KB holds the tokens' hashes
    listed = cli("token", "list", "--data-dir", str(data))
    assert listed.returncode == 0 and listed.stdout.count("erin") == 2
    assert first not in listed.stdout
    revoked = cli("token", "revoke", "erin", "--data-dir", str(data))
    assert "revoked 2" in revoked.stdout
    assert "erin" not in cli("token", "list", "--data-dir", str(data)).stdout


def test_bad_input_is_one_clear_line(tmp_path):
    line = _one_error_line(cli("token", "create", "../root", "--data-dir", str(tmp_path)))
    assert "user name" in line
    line = _one_error_line(cli("serve", "--executor", "mars", "--data-dir", str(tmp_path)))
    assert "executor" in line and "mars" in line
    line = _one_error_line(cli("serve", "--max-trials", "50", "--cap-trials", "10",
                               "--data-dir", str(tmp_path)))
    assert "max_trials 50 is over its cap 10" in line
