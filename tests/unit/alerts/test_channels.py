"""Notification channels against real receivers on 127.0.0.1: a threaded HTTP server that records what arrives
(and can answer 500, answer late or not at all) and an aiosmtpd SMTP server (plain, and STARTTLS with AUTH
over a throw-away self-signed certificate)."""

from __future__ import annotations

import base64
import datetime as dt
import email
import email.policy
import ipaddress
import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from driftline.alerts.channels import (
    ChannelConfig,
    EmailChannel,
    Message,
    PagerDutyChannel,
    SlackChannel,
    WebhookChannel,
    describe,
    payload,
    resolve_secret,
    send,
    send_all,
)

REPORT = "https://reports.example.com/churn/2026-01-07/drift.html"
TOKEN = "xoxb7c1d9e4f00aa11bb22cc33dd44ee55"   # a webhook URL's secret path part
PASSWORD = "pw-Zq8!v3rY-s3cr3t"
ROUTING_KEY = "R0UT1NGK3Y0123456789abcdefabcdef"
LOGGER = "driftline.alerts.channels"


def message(**changes: Any) -> Message:
    base: dict[str, Any] = dict(
        model="churn", rule="drift_share", window="2026-01-01..2026-01-07", severity="critical", status="firing",
        title="churn: 42% of the features drifted", reason="Drift share 0.42 is above the alert threshold 0.3.",
        value=0.42, threshold=0.3, report=REPORT, dedup_key="driftline/churn/drift_share/2026-01-01..2026-01-07",
        details={"drifted": ["x1", "plan"], "rows": 1600})
    return Message(**{**base, **changes})


def channel(**data: Any) -> ChannelConfig:
    return TypeAdapter(ChannelConfig).validate_python(data)


def json_body(name: str, cfg: ChannelConfig, msg: Message) -> dict[str, Any]:
    body = payload(name, cfg, msg)
    assert isinstance(body, dict)
    return body


# -- receivers ------------------------------------------------------------------------------------

@dataclass
class Receiver:
    """What arrived, and how to answer: ``answers`` in turn (the last one repeats), ``delay`` before answering;
    an error answer echoes the request (path and body), as some receivers do, secrets included."""

    url: str = ""
    answers: list[int] = field(default_factory=lambda: [200])
    delay: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:   # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            rec.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                                 "body": json.loads(body)})
            status = rec.answers[min(len(rec.requests), len(rec.answers)) - 1]
            if rec.delay:
                rec.release.wait(rec.delay)
            answer = b"ok" if status < 300 else f"rejected {self.path} {body.decode()}".encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    rec.url = f"http://127.0.0.1:{server.server_port}"
    yield rec
    rec.release.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(f"{r.name} {r.levelname} {r.getMessage()}" for r in caplog.records) + caplog.text


# -- HTTP channels --------------------------------------------------------------------------------

def test_a_webhook_receives_the_payload_as_json(receiver: Receiver) -> None:
    cfg = channel(type="webhook", url=f"{receiver.url}/hooks/driftline")
    msg = message(details={"drifted": ["x1"], "as_of": dt.date(2026, 1, 7), "psi": float("nan")})
    result = send("ops", cfg, msg)
    assert (result.channel, result.ok, result.attempts, result.error) == ("ops", True, 1, None)
    [req] = receiver.requests
    assert (req["method"], req["path"]) == ("POST", "/hooks/driftline")
    assert req["headers"]["Content-Type"] == "application/json; charset=utf-8"
    assert req["body"] == payload("ops", cfg, msg) == {
        "model": "churn", "rule": "drift_share", "window": "2026-01-01..2026-01-07", "severity": "critical",
        "status": "firing", "title": "churn: 42% of the features drifted",
        "reason": "Drift share 0.42 is above the alert threshold 0.3.", "value": 0.42, "threshold": 0.3,
        "report": REPORT, "dedup_key": "driftline/churn/drift_share/2026-01-01..2026-01-07",
        "details": {"drifted": ["x1"], "as_of": "2026-01-07", "psi": None}}   # JSON-safe: NaN is null


def test_a_webhook_url_from_the_environment_sends_its_user_info_as_basic_auth(
        receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret_url = receiver.url.replace("://", f"://bot:{PASSWORD}@") + "/in"
    cfg = channel(type="webhook", url_env="DRIFTLINE_TEST_HOOK")
    result = send("hook", cfg, message(), environ={"DRIFTLINE_TEST_HOOK": secret_url})
    assert result.ok
    [req] = receiver.requests
    assert req["path"] == "/in"
    assert base64.b64decode(req["headers"]["Authorization"].removeprefix("Basic ")).decode() == f"bot:{PASSWORD}"
    assert PASSWORD not in logged(caplog)


def test_slack_gets_block_kit_with_value_threshold_reason_and_report(receiver: Receiver, tmp_path: Path) -> None:
    (tmp_path / "slack_url").write_text(f"{receiver.url}/services/T0/B0/{TOKEN}\n")
    cfg = channel(type="slack", url_file=str(tmp_path / "slack_url"))
    msg = message(reason="Drift share 0.42 > 0.3 on <x1> & plan.")
    assert send("oncall", cfg, msg).ok
    [req] = receiver.requests
    assert req["path"] == f"/services/T0/B0/{TOKEN}"
    assert req["body"] == payload("oncall", cfg, msg)
    body = req["body"]
    assert body["text"] == ("[FIRING critical] churn: 42% of the features drifted: value 0.42 (threshold 0.3). "
                            f"Drift share 0.42 &gt; 0.3 on &lt;x1&gt; &amp; plan. Report: {REPORT}")
    assert [b["type"] for b in body["blocks"]] == ["header", "section", "section", "section", "context"]
    assert body["blocks"][0]["text"] == {"type": "plain_text", "text": ":red_circle: churn: 42% of the features "
                                         "drifted", "emoji": True}
    assert body["blocks"][1]["text"]["text"] == "Drift share 0.42 &gt; 0.3 on &lt;x1&gt; &amp; plan."
    assert [f["text"] for f in body["blocks"][2]["fields"]] == [
        "*Model*\nchurn", "*Rule*\ndrift_share", "*Window*\n2026-01-01..2026-01-07", "*Severity*\ncritical",
        "*Value*\n0.42", "*Threshold*\n0.3"]
    assert body["blocks"][3]["text"] == {"type": "mrkdwn", "text": f"*Report*: <{REPORT}|open the report>"}
    resolved = json_body("oncall", cfg, message(status="resolved", report="/work/reports/drift.html", value=None))
    assert resolved["blocks"][0]["text"]["text"].startswith(":white_check_mark: ")
    assert resolved["blocks"][3]["text"]["text"] == "*Report*: `/work/reports/drift.html`"
    assert "*Value*\nn/a" in [f["text"] for f in resolved["blocks"][2]["fields"]]


def test_pagerduty_gets_an_events_v2_trigger_then_resolve(receiver: Receiver,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTLINE_TEST_PD_KEY", ROUTING_KEY)
    receiver.answers = [202]
    cfg = channel(type="pagerduty", routing_key_env="DRIFTLINE_TEST_PD_KEY", url=f"{receiver.url}/v2/enqueue")
    firing, resolved = message(), message(status="resolved")
    assert [r.ok for r in (send("pd", cfg, firing), send("pd", cfg, resolved))] == [True, True]
    first, second = (r["body"] for r in receiver.requests)
    assert json_body("pd", cfg, firing)["routing_key"] == "$DRIFTLINE_TEST_PD_KEY"   # not resolved by payload
    assert first == {**json_body("pd", cfg, firing), "routing_key": ROUTING_KEY}
    assert first == {
        "routing_key": ROUTING_KEY, "event_action": "trigger", "client": "driftline",
        "dedup_key": "driftline/churn/drift_share/2026-01-01..2026-01-07",
        "payload": {
            "summary": "[FIRING critical] churn: 42% of the features drifted: value 0.42 (threshold 0.3)",
            "source": "driftline", "severity": "critical", "component": "churn", "class": "drift_share",
            "custom_details": {"model": "churn", "rule": "drift_share", "window": "2026-01-01..2026-01-07",
                               "status": "firing", "reason": "Drift share 0.42 is above the alert threshold 0.3.",
                               "value": 0.42, "threshold": 0.3, "report": REPORT,
                               "details": {"drifted": ["x1", "plan"], "rows": 1600}}},
        "links": [{"href": REPORT, "text": "driftline report"}]}
    assert (second["event_action"], second["dedup_key"]) == ("resolve", first["dedup_key"])
    assert json_body("pd", cfg, message(report="/local/report.html"))["links"] == []


def test_a_500_then_200_is_retried_once_after_the_backoff(receiver: Receiver,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    receiver.answers = [500, 200]
    sleeps = Sleeps()
    result = send("ops", channel(type="webhook", url=receiver.url, backoff_seconds=0.25), message(), sleep=sleeps)
    assert (result.ok, result.attempts, result.error, sleeps) == (True, 2, None, [0.25])
    assert len(receiver.requests) == 2 and receiver.requests[0]["body"] == receiver.requests[1]["body"]
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "attempt 1 of 3" in warning and "HTTP 500" in warning and "retrying in 0.25s" in warning


def test_a_receiver_that_always_answers_500_fails_after_every_retry_without_raising(
        receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    receiver.answers = [500]
    sleeps = Sleeps()
    cfg = channel(type="webhook", url=receiver.url, retries=3, backoff_seconds=0.5)
    result = send("ops", cfg, message(), sleep=sleeps)
    assert (result.ok, result.attempts, sleeps) == (False, 4, [0.5, 1.0, 2.0])   # exponential backoff
    assert result.error is not None and result.error.startswith("HTTP 500 Internal Server Error: rejected /")
    assert len(receiver.requests) == 4
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 4 and warnings[-1].endswith("; giving up (the job goes on)")


@pytest.mark.parametrize(("status", "attempts"), [(302, 1), (400, 1), (404, 1), (429, 3)])
def test_a_redirect_or_client_error_is_final_but_too_many_requests_is_retried(receiver: Receiver, status: int,
                                                                  attempts: int) -> None:
    receiver.answers = [status]
    result = send("ops", channel(type="webhook", url=receiver.url), message(), sleep=Sleeps())
    assert (result.ok, result.attempts, len(receiver.requests)) == (False, attempts, attempts)
    assert result.error is not None and result.error.startswith(f"HTTP {status} ")


def test_a_slow_receiver_times_out_within_the_bound(receiver: Receiver) -> None:
    receiver.delay = 10.0
    started = time.monotonic()
    result = send("ops", channel(type="webhook", url=receiver.url, timeout_seconds=0.3, retries=1), message(),
                  sleep=Sleeps())
    assert (result.ok, result.attempts, result.error) == (False, 2, "timed out after 0.3s")
    assert time.monotonic() - started < 3.0 and result.seconds < 3.0


def test_a_receiver_that_is_down_is_a_failed_result() -> None:
    cfg = channel(type="slack", url_env="DRIFTLINE_TEST_SLACK", retries=1)
    result = send("oncall", cfg, message(), environ={"DRIFTLINE_TEST_SLACK": f"http://127.0.0.1:{free_port()}/x"},
                  sleep=Sleeps())
    assert (result.ok, result.attempts) == (False, 2)
    assert result.error is not None and result.error.startswith("cannot connect: ") and "refused" in result.error


def test_no_secret_reaches_a_log_record_or_an_error(receiver: Receiver, caplog: pytest.LogCaptureFixture,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The receiver echoes the request (the URL's token, the routing key) in its error answers; a receiver that
    is down is reached through a URL with a password in it."""
    caplog.set_level(logging.DEBUG)
    receiver.answers = [500, 500, 400]
    monkeypatch.setenv("DRIFTLINE_TEST_SLACK", f"{receiver.url}/services/T0/B0/{TOKEN}")
    monkeypatch.setenv("DRIFTLINE_TEST_PD_KEY", ROUTING_KEY)
    monkeypatch.setenv("DRIFTLINE_TEST_HOOK", f"http://bot:{PASSWORD}@127.0.0.1:{free_port()}/in/{TOKEN}")
    channels = {"slack": channel(type="slack", url_env="DRIFTLINE_TEST_SLACK", retries=1),
                "pd": channel(type="pagerduty", routing_key_env="DRIFTLINE_TEST_PD_KEY", url=receiver.url),
                "hook": channel(type="webhook", url_env="DRIFTLINE_TEST_HOOK", retries=0)}
    results = send_all(channels, ["slack", "pd", "hook"], message(), sleep=Sleeps())
    assert [(r.channel, r.ok, r.attempts) for r in results] == [("slack", False, 2), ("pd", False, 1),
                                                               ("hook", False, 1)]
    assert str(results[0].error).startswith("HTTP 500 Internal Server Error: rejected *** {")   # the path is secret
    assert results[1].error is not None and '"routing_key": "***"' in results[1].error
    assert TOKEN in str(receiver.requests) and ROUTING_KEY in str(receiver.requests)   # they did get through
    text = logged(caplog) + "\n".join(str(r.error) for r in results)
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 4
    for secret in (TOKEN, ROUTING_KEY, PASSWORD):
        assert secret not in text


def test_a_missing_secret_is_a_failed_result_naming_where_it_should_be(tmp_path: Path,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    missing = tmp_path / "nope"
    results = send_all({"slack": channel(type="slack", url_env="DRIFTLINE_TEST_UNSET"),
                        "pd": channel(type="pagerduty", routing_key_file=str(missing)),
                        "hook": channel(type="webhook", url_env="DRIFTLINE_TEST_NOT_A_URL")},
                       ["slack", "pd", "hook", "teams", "slack"], message(),
                       environ={"DRIFTLINE_TEST_NOT_A_URL": f"hooks.example.com/{TOKEN}"})
    assert [(r.channel, r.ok, r.attempts, r.error) for r in results] == [
        ("slack", False, 0, "expected the secret in environment variable $DRIFTLINE_TEST_UNSET, found it unset"),
        ("pd", False, 0, f"expected the secret in file {missing}, found it unreadable (No such file or directory)"),
        ("hook", False, 0, "expected an http:// or https:// URL in $DRIFTLINE_TEST_NOT_A_URL, found something "
                           "else (not shown)"),
        ("teams", False, 0, "expected a channel of alerts.channels (hook, pd, slack), found 'teams'")]
    assert len(caplog.records) == 4 and TOKEN not in logged(caplog)
    assert resolve_secret(env="K", environ={"K": "  v \n"}) == "v"
    with pytest.raises(ValueError, match="expected env or file"):
        resolve_secret()


def test_dry_run_text_says_what_would_go_where_without_reading_secrets(receiver: Receiver,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTLINE_TEST_SLACK", f"{receiver.url}/services/T0/B0/{TOKEN}")
    slack = channel(type="slack", url_env="DRIFTLINE_TEST_SLACK")
    text = describe("oncall", slack, message())
    head, body = text.split("\n", 1)
    assert head == ("channel 'oncall' (slack): POST JSON to the URL in $DRIFTLINE_TEST_SLACK; timeout 5s, "
                    "up to 2 retries (first after 1s, doubling)")
    assert json.loads(body) == payload("oncall", slack, message()) and TOKEN not in text
    pd = describe("pd", channel(type="pagerduty", routing_key_file="/run/secrets/pd"), message())
    assert pd.startswith("channel 'pd' (pagerduty): POST JSON to https://events.pagerduty.com/v2/enqueue (routing "
                         "key in <contents of /run/secrets/pd>);")
    assert '"routing_key": "<contents of /run/secrets/pd>"' in pd
    mail = describe("ops", channel(type="email", host="smtp.example.com", username="bot", password_env="SMTP_PW",
                                   sender="driftline@example.com", to=["a@example.com", "b@example.com"]), message())
    assert mail.startswith("channel 'ops' (email): SMTP smtp.example.com:587 with STARTTLS, login as bot (password "
                           "in $SMTP_PW), from driftline@example.com to a@example.com, b@example.com; timeout 5s")
    assert "Subject: [driftline FIRING critical] churn: 42% of the features drifted" in mail
    assert receiver.requests == []


# -- e-mail ---------------------------------------------------------------------------------------

class Inbox:
    def __init__(self) -> None:
        self.envelopes: list[tuple[str, list[str], bytes]] = []
        self.logins: list[tuple[str, str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:   # noqa: N802 - aiosmtpd's name
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        from aiosmtpd.smtp import AuthResult

        self.logins.append((data.login.decode(), data.password.decode()))
        return AuthResult(success=(data.login, data.password) == (b"bot", PASSWORD.encode()), handled=False)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, Path]:
    """A self-signed certificate for 127.0.0.1: the server's context, and the file the client trusts."""
    pytest.importorskip("cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "driftline test SMTP")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                       serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return context, folder / "cert.pem"


@pytest.fixture
def smtp_server(request: pytest.FixtureRequest) -> Iterator[tuple[Inbox, int]]:
    """aiosmtpd on 127.0.0.1, recording what arrives; ``@pytest.mark.parametrize('smtp_server', [options],
    indirect=True)`` with ``starttls`` (required, over `tls`) and ``auth`` (required, `Inbox.authenticate`)."""
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    options = dict(getattr(request, "param", {}))
    if options.pop("starttls", False):
        options.update(tls_context=request.getfixturevalue("tls")[0], require_starttls=True)
    if options.pop("auth", False):
        options.update(authenticator=inbox.authenticate, auth_required=True, auth_require_tls=True)
    port = free_port()   # aiosmtpd 1.4 cannot bind port 0 (it connects to its port once started)
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    yield inbox, port
    controller.stop()


def parsed(text: str | bytes) -> email.message.EmailMessage:
    raw = text.encode() if isinstance(text, str) else text
    return email.message_from_bytes(raw, policy=email.policy.default)   # type: ignore[return-value]


def test_an_email_arrives_with_subject_recipients_and_the_alert_in_its_body(
        smtp_server: tuple[Inbox, int]) -> None:
    inbox, port = smtp_server
    cfg = channel(type="email", host="127.0.0.1", port=port, starttls=False, sender="driftline@example.com",
                  to=["oncall@example.com", "ml-team@example.com"])
    msg = message(details={"drifted": ["x1", "plan"]})
    result = send("ops", cfg, msg)
    assert (result.ok, result.attempts, result.error) == (True, 1, None)
    [(sender, rcpt, content)] = inbox.envelopes
    assert (sender, rcpt) == ("driftline@example.com", ["oncall@example.com", "ml-team@example.com"])
    got, want = parsed(content), parsed(str(payload("ops", cfg, msg)))
    for header in ("From", "To", "Subject", "X-Driftline-Dedup-Key"):
        assert got[header] == want[header]
    assert got["Subject"] == "[driftline FIRING critical] churn: 42% of the features drifted"
    assert got["Date"] and got["Message-ID"].endswith("@example.com>")   # added at send time
    assert got.get_content().replace("\r\n", "\n") == want.get_content() == (   # CRLF on the wire
        "churn: 42% of the features drifted\n\n"
        "Status:    firing (critical)\n"
        "Model:     churn\n"
        "Rule:      drift_share\n"
        "Window:    2026-01-01..2026-01-07\n"
        "Value:     0.42\n"
        "Threshold: 0.3\n"
        "Reason:    Drift share 0.42 is above the alert threshold 0.3.\n"
        f"Report:    {REPORT}\n"
        "Dedup key: driftline/churn/drift_share/2026-01-01..2026-01-07\n\n"
        "Details:\n"
        '  drifted: ["x1", "plan"]\n')


@pytest.mark.parametrize("smtp_server", [{"starttls": True, "auth": True}], indirect=True)
def test_an_email_over_starttls_with_login(smtp_server: tuple[Inbox, int], tls: tuple[ssl.SSLContext, Path],
                                           monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
                                           tmp_path: Path) -> None:
    """The server's certificate is verified: trusted here through $SSL_CERT_FILE (OpenSSL's default CA file)."""
    inbox, port = smtp_server
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    (tmp_path / "password").write_text(PASSWORD + "\n")
    cfg = channel(type="email", host="127.0.0.1", port=port, username="bot", password_file=str(tmp_path / "password"),
                  sender="driftline@example.com", to=["oncall@example.com"], retries=0)
    untrusted = send("ops", cfg, message())   # before the test certificate is trusted
    assert not untrusted.ok and "CERTIFICATE_VERIFY_FAILED" in str(untrusted.error) and inbox.logins == []
    monkeypatch.setenv("SSL_CERT_FILE", str(tls[1]))
    assert send("ops", cfg, message()).ok
    assert inbox.logins == [("bot", PASSWORD)]
    assert [e[1] for e in inbox.envelopes] == [["oncall@example.com"]]
    wrong = cfg.model_copy(update={"password_file": None, "password_env": "DRIFTLINE_TEST_SMTP_PW"})
    sleeps = Sleeps()
    result = send("ops", wrong, message(), environ={"DRIFTLINE_TEST_SMTP_PW": "not-" + PASSWORD}, sleep=sleeps)
    assert (result.ok, result.attempts, sleeps) == (False, 1, [])   # a 5xx reply is final
    assert result.error is not None and result.error.startswith("SMTP 535 ")
    assert len(inbox.envelopes) == 1
    assert PASSWORD not in logged(caplog) + result.error


def test_an_smtp_server_that_is_down_or_offers_no_starttls_is_a_failed_result(smtp_server: tuple[Inbox, int]) -> None:
    down = send("ops", channel(type="email", host="127.0.0.1", port=free_port(), starttls=False, retries=1,
                               sender="driftline@example.com", to=["oncall@example.com"]), message(), sleep=Sleeps())
    assert (down.ok, down.attempts) == (False, 2) and "Connection refused" in str(down.error)
    _, port = smtp_server   # no STARTTLS offered: STARTTLS is required by the channel, never skipped
    plain = send("ops", channel(type="email", host="127.0.0.1", port=port, retries=0,
                                sender="driftline@example.com", to=["oncall@example.com"]), message())
    assert not plain.ok and "STARTTLS" in str(plain.error)


# -- configuration --------------------------------------------------------------------------------

@pytest.mark.parametrize(("data", "error"), [
    ({"type": "webhook"}, "webhook: expected exactly one of url, url_env, url_file, found none"),
    ({"type": "webhook", "url": "https://h.example.com/x", "url_file": "/run/secrets/hook"},
     "webhook: expected exactly one of url, url_env, url_file, found url and url_file"),
    ({"type": "webhook", "url": "ftp://h.example.com/x"},
     "expected an http:// or https:// URL, found 'ftp://h.example.com/x'"),
    ({"type": "webhook", "url": f"https://bot:{PASSWORD}@h.example.com/x"},
     "expected a URL without credentials (put a URL with a user or password in url_env or url_file), found one "
     "with user info: 'https://***@h.example.com/x'"),
    ({"type": "webhook", "url_env": "hook-url"},
     "expected the name of an environment variable (letters, digits, _), found 'hook-url'"),
    ({"type": "webhook", "url_env": f"https://hooks.slack.com/services/T0/B0/{TOKEN}"},
     "expected the name of an environment variable (letters, digits, _), found a URL (not shown; put it in the "
     "variable and name the variable here)"),
    ({"type": "webhook", "url_file": ""}, "expected the path of a file holding the secret, found ''"),
    ({"type": "slack", "url": f"https://hooks.slack.com/services/T0/B0/{TOKEN}"},
     "slack: expected the webhook URL in url_env or url_file (the URL itself is a secret), found it inline in url "
     "(not shown)"),
    ({"type": "slack", "url_env": "S", "retries": 11}, "expected retries from 0 to 10, found 11"),
    ({"type": "slack", "url_env": "S", "timeout_seconds": 0}, "expected timeout_seconds in (0, 120], found 0.0"),
    ({"type": "slack", "url_env": "S", "timeout_seconds": 121}, "expected timeout_seconds in (0, 120], found 121.0"),
    ({"type": "pagerduty", "routing_key_env": "K", "routing_key_file": "/k"},
     "pagerduty: expected exactly one of routing_key_env, routing_key_file, found routing_key_env and "
     "routing_key_file"),
    ({"type": "email", "host": "smtp.example.com", "sender": "d@example.com", "to": []},
     "expected at least one recipient address, found an empty list"),
    ({"type": "email", "host": "smtp.example.com", "sender": "d@example.com", "to": ["oncall"]},
     "expected an e-mail address like oncall@example.com, found 'oncall'"),
    ({"type": "email", "host": "smtp.example.com", "sender": "d@example.com", "to": ["a@x.com\nBcc: b@y.com"]},
     "expected an e-mail address like oncall@example.com, found 'a@x.com\\nBcc: b@y.com'"),
    ({"type": "email", "host": "smtp.example.com", "sender": "d@example.com", "to": ["a@example.com"],
      "username": "bot"}, "email: expected password_env or password_file with username, found neither"),
])
def test_a_refused_channel_config_says_what_was_expected_and_found(data: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError) as info:
        channel(**data)
    [err] = info.value.errors()
    assert err["msg"].removeprefix("Value error, ") == error
    assert PASSWORD not in err["msg"] and TOKEN not in err["msg"]


def test_a_message_states_a_known_severity_and_status_on_one_line() -> None:
    with pytest.raises(ValueError, match="expected a severity in critical, warning, info, found 'error'"):
        message(severity="error")
    with pytest.raises(ValueError, match="expected a status firing or resolved, found 'open'"):
        message(status="open")
    with pytest.raises(ValueError, match="expected title on one line"):
        message(title="two\nlines")
    assert isinstance(channel(type="email", host="::1", sender="d@localhost", to=["o@localhost"]), EmailChannel)
    assert isinstance(channel(type="webhook", url="http://127.0.0.1:8080/x"), WebhookChannel)
    assert isinstance(channel(type="slack", url_file="~/slack"), SlackChannel)
    assert isinstance(channel(type="pagerduty", routing_key_env="PD"), PagerDutyChannel)
