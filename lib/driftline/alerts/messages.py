"""What an alert says: the `Message` (one alert of one model, rule and window) and how each channel renders it —
`payload`, the exact body a channel sends (secrets shown as where they live: ``$VAR`` or a file's path), and
`describe`, the ``--dry-run`` text. Delivery (secrets read at send time, retries, masking) is
`driftline.alerts.channels`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from driftline.alerts.channel_spec import (
    HTTP_URL,
    ChannelConfig,
    CommandChannel,
    EmailChannel,
    PagerDutyChannel,
    SlackChannel,
    WebhookChannel,
)
from driftline.spec import mask_userinfo

SEVERITIES = ("critical", "warning", "info")
FIRING, RESOLVED = "firing", "resolved"
_SLACK_ICON = {"critical": ":red_circle:", "warning": ":large_orange_circle:", "info": ":large_blue_circle:"}


@dataclass(frozen=True)
class Message:
    """One alert (or its resolution) for one model, rule and window; ``dedup_key`` names the incident."""

    model: str
    rule: str
    window: str            # e.g. "2026-01-01..2026-01-07"
    severity: str          # critical | warning | info
    status: str            # firing | resolved
    title: str             # one line
    reason: str            # why, one or two sentences
    value: float | None
    threshold: float | None
    report: str | None     # the report's path or URL
    dedup_key: str         # stable: f"driftline/{model}/{rule}/{window}"
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"expected a severity in {', '.join(SEVERITIES)}, found {self.severity!r}")
        if self.status not in (FIRING, RESOLVED):
            raise ValueError(f"expected a status {FIRING} or {RESOLVED}, found {self.status!r}")
        for name in ("model", "rule", "window", "title", "dedup_key"):
            text = getattr(self, name)
            if not text or any(ord(c) < 32 for c in text):
                raise ValueError(f"expected {name} on one line, found {text!r}")


# -- what is sent ---------------------------------------------------------------------------------

def payload(name: str, channel: ChannelConfig, message: Message) -> dict[str, Any] | str:
    """The body ``channel`` sends for ``message``: a JSON object for the HTTP and command channels (PagerDuty's
    routing key shown as ``$VARIABLE`` / ``<contents of FILE>``, `send` puts the key there), the RFC 5322 text of the
    e-mail (`send` adds its ``Date`` and ``Message-ID`` headers)."""
    if isinstance(channel, EmailChannel):
        return email_message(channel, message).as_string()
    return event_body(channel, message, where_secret(channel))


def describe(name: str, channel: ChannelConfig, message: Message) -> str:
    """What `send` would send where (the ``--dry-run`` text), over several lines; secrets are not read."""
    retries = (f"timeout {channel.timeout_seconds:g}s, up to {channel.retries} retries "
               f"(first after {channel.backoff_seconds:g}s, doubling)")
    if isinstance(channel, EmailChannel):
        login = (f", login as {channel.username} (password in {where_secret(channel)})"
                 if channel.username is not None else "")
        head = (f"channel {name!r} (email): SMTP {channel.host}:{channel.port}"
                f"{' with STARTTLS' if channel.starttls else ' without TLS'}{login}, "
                f"from {channel.sender} to {', '.join(channel.to)}; {retries}")
        return f"{head}\n{payload(name, channel, message)}"
    if isinstance(channel, CommandChannel):
        where = f" in {channel.cwd}" if channel.cwd is not None else ""
        head = (f"channel {name!r} (command): run {' '.join(json.dumps(a) for a in channel.argv)}{where} with the "
                f"JSON on its standard input and DRIFTLINE_ALERT_* variables; {retries}")
    else:
        head = f"channel {name!r} ({channel.type}): POST JSON to {_where_url(channel)}; {retries}"
    return f"{head}\n{json.dumps(payload(name, channel, message), indent=2, ensure_ascii=False)}"


def event_body(channel: ChannelConfig, message: Message, routing_key: str) -> dict[str, Any]:
    m = message
    if isinstance(channel, SlackChannel):
        return _slack(m)
    if isinstance(channel, PagerDutyChannel):
        details = {"model": m.model, "rule": m.rule, "window": m.window, "status": m.status, "reason": m.reason,
                   "value": _json(m.value), "threshold": _json(m.threshold), "report": m.report,
                   "details": _json(m.details)}
        return {"routing_key": routing_key, "event_action": "trigger" if m.status == FIRING else "resolve",
                "dedup_key": m.dedup_key, "client": "driftline",
                "payload": {"summary": cut(_summary(m), 1024), "source": "driftline", "severity": m.severity,
                            "component": m.model, "class": m.rule, "custom_details": details},
                "links": [{"href": m.report, "text": "driftline report"}] if _is_url(m.report) else []}
    return {"model": m.model, "rule": m.rule, "window": m.window, "severity": m.severity, "status": m.status,
            "title": m.title, "reason": m.reason, "value": _json(m.value), "threshold": _json(m.threshold),
            "report": m.report, "dedup_key": m.dedup_key, "details": _json(m.details)}


def _slack(m: Message) -> dict[str, Any]:
    icon = ":white_check_mark:" if m.status == RESOLVED else _SLACK_ICON[m.severity]
    report = "none"
    if m.report is not None:
        report = (f"<{m.report.replace('|', '%7C').replace('>', '%3E')}|open the report>" if _is_url(m.report)
                  else f"`{_esc(m.report)}`")
    fields = [("Model", m.model), ("Rule", m.rule), ("Window", m.window), ("Severity", m.severity),
              ("Value", _number(m.value)), ("Threshold", _number(m.threshold))]
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": cut(f"{icon} {m.title}", 150), "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": cut(_esc(m.reason) or " ", 3000)}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": cut(f"*{k}*\n{_esc(v)}", 2000)} for k, v in fields]},
        {"type": "section", "text": {"type": "mrkdwn", "text": cut(f"*Report*: {report}", 3000)}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": cut(
            f"{m.status.upper()} · driftline · `{_esc(m.dedup_key)}`", 3000)}]},
    ]
    text = f"{_summary(m)}. {m.reason} Report: {m.report or 'none'}"
    return {"text": cut(_esc(text), 3000), "blocks": blocks}


def email_message(channel: EmailChannel, m: Message) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = channel.sender
    mail["To"] = ", ".join(channel.to)
    mail["Subject"] = f"[driftline {m.status.upper()} {m.severity}] {m.title}"
    mail["X-Driftline-Dedup-Key"] = m.dedup_key
    rows = [("Status", f"{m.status} ({m.severity})"), ("Model", m.model), ("Rule", m.rule), ("Window", m.window),
            ("Value", _number(m.value)), ("Threshold", _number(m.threshold)), ("Reason", m.reason),
            ("Report", m.report or "none"), ("Dedup key", m.dedup_key)]
    text = "\n".join([m.title, "", *(f"{k + ':':<11}{v}" for k, v in rows)])
    if m.details:
        text += "\n\nDetails:\n" + "\n".join(f"  {k}: {json.dumps(v)}" for k, v in _json(m.details).items())
    mail.set_content(text + "\n")
    return mail


def _summary(m: Message) -> str:
    return f"[{m.status.upper()} {m.severity}] {m.title}: value {_number(m.value)} (threshold {_number(m.threshold)})"


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.6g}"


def _json(value: Any) -> Any:
    """``value`` as plain JSON data: non-finite numbers as null, other types as their text."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str | int):
        return value
    if isinstance(value, Mapping):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    return str(value)


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_url(text: str | None) -> bool:
    return text is not None and bool(HTTP_URL.match(text))


def where_secret(channel: ChannelConfig) -> str:
    env = getattr(channel, "url_env", None) or getattr(channel, "routing_key_env", None) or \
        getattr(channel, "password_env", None)
    if env is not None:
        return f"${env}"
    file = getattr(channel, "url_file", None) or getattr(channel, "routing_key_file", None) or \
        getattr(channel, "password_file", None)
    return f"<contents of {file}>"


def _where_url(channel: ChannelConfig) -> str:
    if isinstance(channel, PagerDutyChannel):
        return f"{channel.url} (routing key in {where_secret(channel)})"
    if isinstance(channel, WebhookChannel) and channel.url is not None:
        return mask_userinfo(channel.url)
    return f"the URL in {where_secret(channel)}"
