"""`inboxwatch preview`: the sequence's own acknowledgement previewed for a form lead is
the acknowledgement (not a follow-up), and the owner's templates are shown as the owner
gets them (To the owner, Reply-To the lead), not as mail to the lead."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_cli import REPO, SAMPLES, Capsys, _headers_and_body, cli, config_text

FORM = SAMPLES / "02-web-form.eml"


@pytest.fixture
def shipped(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(config_text(REPO / "rules", REPO / "templates"), encoding="utf-8")
    return path


def test_the_sequences_ack_for_a_form_lead_is_the_acknowledgement(
    shipped: Path, capsys: Capsys
) -> None:
    # The form rule acknowledges with ack-form; the sequence's own ack step is "ack".
    code, out, err = cli(capsys, "preview", "ack", "-c", shipped, "--lead", FORM)
    assert (code, err) == (0, "")
    headers, body = _headers_and_body(out)
    assert headers["X-Inboxwatch"] == "ack"
    assert headers["To"] == "Tom Becker <tom.becker@example.org>"
    assert "In-Reply-To" not in headers  # a form's notification is not answered
    assert not headers["Subject"].startswith("Re:")
    assert "Hi Tom," in body


@pytest.mark.parametrize("lead", [FORM, None])
def test_the_new_lead_alert_is_shown_as_the_owner_gets_it(
    shipped: Path, capsys: Capsys, lead: Path | None
) -> None:
    argv = ["--lead", lead] if lead else []
    code, out, err = cli(capsys, "preview", "owner-alert", "-c", shipped, *argv)
    assert (code, err) == (0, "")
    headers, body = _headers_and_body(out)
    assert headers["X-Inboxwatch"] == "owner-alert"
    assert headers["To"] == "owner@shop.example"
    assert headers["From"].startswith('"New lead: ')
    if lead:
        assert headers["Reply-To"].startswith("Tom Becker <tom.becker@example.org>")
        assert "install heat pumps" in body  # the lead's words, the excerpt filled
    else:
        assert headers["Reply-To"].startswith("Jane Doe <jane.doe@example.com>")
        assert "what would a small job cost" in body


@pytest.mark.parametrize(
    ("template", "said"),
    [
        ("owner-reply", "install heat pumps"),
        ("owner-nudge", "has waited for an answer since "),
        ("owner-task", "Please call Tom Becker"),
    ],
)
def test_the_other_owner_templates_go_to_the_owner(
    shipped: Path, capsys: Capsys, template: str, said: str
) -> None:
    code, out, err = cli(capsys, "preview", template, "-c", shipped, "--lead", FORM)
    assert (code, err) == (0, "")
    headers, body = _headers_and_body(out)
    assert (headers["X-Inboxwatch"], headers["To"]) == (template, "owner@shop.example")
    assert said in body
    assert "{{" not in body
