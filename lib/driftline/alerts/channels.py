"""Notification channels: delivering one alert `Message` (rendered by `driftline.alerts.messages`, re-exported
here with `payload` and `describe`) as a generic JSON webhook, a Slack(-compatible) Block Kit message, a PagerDuty
Events API v2 event, a plain-text e-mail over SMTP, or the JSON on the standard input of a local command.

`send` reads the channel's secret from its environment variable or file at send time; each attempt has a timeout,
a failed attempt is logged (one warning line with its cause) and retried with exponential backoff; a 3xx or 4xx
answer (but 408/425/429) or a 5xx SMTP reply is final. `send` never raises for a delivery problem, it returns a
`SendResult`: an alert that cannot be delivered must not fail the job. Every error text and log line has the
resolved secrets and URL user info masked (``***``).

Standard library only: ``subprocess`` (no shell), ``urllib.request`` (redirects are not followed: a webhook's
POST would arrive as a bodiless GET, or its credentials elsewhere) and ``smtplib`` (STARTTLS verifies the
server's certificate against the system's CAs).
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import json
import logging
import os
import signal
import smtplib
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any
from urllib.parse import unquote, urlsplit

from driftline.alerts.channel_spec import (
    HTTP_URL,
    ChannelConfig,
    CommandChannel,
    EmailChannel,
    PagerDutyChannel,
    SecretUnavailable,
    SlackChannel,
    WebhookChannel,
    resolve_secret,
)
from driftline.alerts.messages import Message, cut, describe, email_message, event_body, payload, where_secret
from driftline.spec import mask_userinfo

__all__ = ["ChannelConfig", "CommandChannel", "EmailChannel", "Message", "PagerDutyChannel", "SecretUnavailable",
           "SendResult", "SlackChannel", "WebhookChannel", "describe", "payload", "resolve_secret", "send", "send_all"]

log = logging.getLogger(__name__)

MAX_WAIT = 60.0  # seconds: the longest wait between two attempts, whatever the backoff doubled to
_RETRIED_4XX = {408, 425, 429}  # client errors that a later attempt may not get
_STDERR_TAIL = 65536  # bytes: the end of a failed command's standard error that is read for its last line


@dataclass(frozen=True)
class SendResult:
    """How one channel's delivery went: ``error`` is the last attempt's cause on one line, secrets masked."""

    channel: str
    ok: bool
    attempts: int
    error: str | None
    seconds: float


class _Final(Exception):
    """A refusal that another attempt would get again (a 3xx/4xx answer, a 5xx SMTP reply)."""


class _CommandFailed(Exception):
    """A command channel's program exited with another code than 0 (another attempt may succeed)."""


# -- delivery -------------------------------------------------------------------------------------

def send(name: str, channel: ChannelConfig, message: Message, *, environ: Mapping[str, str] = os.environ,
         sleep: Callable[[float], None] = time.sleep) -> SendResult:
    """Deliver ``message`` through ``channel`` (named ``name``): `SendResult`, never an exception for a
    delivery problem (a missing secret is a failed result after 0 attempts)."""
    started = time.monotonic()
    target = f"{name} ({channel.type})"
    try:
        attempt, secret = _attempt(channel, message, environ)
    except SecretUnavailable as exc:
        log.warning("alert %s not sent through %s: %s", message.dedup_key, target, exc)
        return SendResult(name, False, 0, str(exc), time.monotonic() - started)
    hidden = _fragments(secret)
    total = channel.retries + 1
    error = ""
    for number in range(1, total + 1):
        try:
            attempt()
        except Exception as exc:  # noqa: BLE001 - a receiver down, slow or failing must not fail the job
            error = _mask(_cause(exc, channel), hidden)
            final = isinstance(exc, _Final) or number == total
            wait = min(channel.backoff_seconds * 2 ** (number - 1), MAX_WAIT)
            then = ("giving up (the job goes on)" if number == total else "not retried (a final refusal)"
                    ) if final else f"retrying in {wait:g}s"
            log.warning("alert %s through %s failed (attempt %d of %d): %s; %s", message.dedup_key, target,
                        number, total, error, then)
            if final:
                return SendResult(name, False, number, error, time.monotonic() - started)
            sleep(wait)
        else:
            log.info("alert %s sent through %s (attempt %d)", message.dedup_key, target, number)
            return SendResult(name, True, number, None, time.monotonic() - started)
    return SendResult(name, False, total, error, time.monotonic() - started)  # not reached: the last attempt returns


def send_all(channels: Mapping[str, ChannelConfig], names: Sequence[str], message: Message, *,
             environ: Mapping[str, str] = os.environ, sleep: Callable[[float], None] = time.sleep
             ) -> list[SendResult]:
    """`send` through each channel of ``names`` in turn (each once); a name that is not configured is a failed
    result after 0 attempts."""
    results = []
    for name in dict.fromkeys(names):
        if name not in channels:
            error = f"expected a channel of alerts.channels ({', '.join(sorted(channels)) or 'none'}), found {name!r}"
            log.warning("alert %s not sent: %s", message.dedup_key, error)
            results.append(SendResult(name, False, 0, error, 0.0))
        else:
            results.append(send(name, channels[name], message, environ=environ, sleep=sleep))
    return results


def _attempt(channel: ChannelConfig, message: Message, environ: Mapping[str, str]
             ) -> tuple[Callable[[], None], str | None]:
    """One delivery attempt as a function, and the secret it resolved (to mask)."""
    if isinstance(channel, EmailChannel):
        password = None
        if channel.username is not None:
            password = resolve_secret(env=channel.password_env, file=channel.password_file, environ=environ)
        mail = email_message(channel, message)
        mail["Date"] = email.utils.formatdate(usegmt=True)
        mail["Message-ID"] = email.utils.make_msgid("driftline", domain=channel.sender.rpartition("@")[2])
        return (lambda: _smtp(channel, mail, password)), password
    if isinstance(channel, PagerDutyChannel):
        key = resolve_secret(env=channel.routing_key_env, file=channel.routing_key_file, environ=environ)
        body = event_body(channel, message, key)
        return (lambda: _post(channel.url, body, channel.timeout_seconds)), key
    body = event_body(channel, message, "")
    if isinstance(channel, CommandChannel):
        env = {**environ, **command_environment(message)}
        return (lambda: _run(channel, body, env)), None
    if isinstance(channel, WebhookChannel) and channel.url is not None:
        inline = channel.url
        return (lambda: _post(inline, body, channel.timeout_seconds)), None
    url = resolve_secret(env=channel.url_env, file=channel.url_file, environ=environ)
    if not HTTP_URL.match(url):
        raise SecretUnavailable(f"expected an http:// or https:// URL in {where_secret(channel)}, "
                                "found something else (not shown)")
    return (lambda: _post(url, body, channel.timeout_seconds)), url


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None   # a 3xx answer becomes an HTTPError: a failed attempt


_OPENER = urllib.request.build_opener(_NoRedirect)


def _post(url: str, body: Mapping[str, Any], timeout: float) -> None:
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "driftline-alerts"}
    split = urlsplit(url)
    if "@" in split.netloc:   # user info from a URL secret: HTTP basic auth, never part of the request line
        credentials = f"{unquote(split.username or '')}:{unquote(split.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
        url = split._replace(netloc=split.netloc.rpartition("@")[2]).geturl()
    data = json.dumps(body, ensure_ascii=False, allow_nan=False).encode()
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            response.read(65536)
    except urllib.error.HTTPError as exc:
        if exc.code < 500 and exc.code not in _RETRIED_4XX:   # 3xx (not followed) and 4xx
            raise _Final(_http_error(exc)) from None
        raise


def command_environment(message: Message) -> dict[str, str]:
    """The ``DRIFTLINE_ALERT_*`` variables a command channel's program finds in its environment."""
    m = message
    return {"DRIFTLINE_ALERT_MODEL": m.model, "DRIFTLINE_ALERT_RULE": m.rule, "DRIFTLINE_ALERT_WINDOW": m.window,
            "DRIFTLINE_ALERT_STATUS": m.status, "DRIFTLINE_ALERT_SEVERITY": m.severity,
            "DRIFTLINE_ALERT_DEDUP_KEY": m.dedup_key}


def _run(channel: CommandChannel, body: Mapping[str, Any], env: Mapping[str, str]) -> None:
    """One run of the command: exit 0, or an exception saying why not (a program that cannot start: final).

    It runs in a session of its own: on timeout the whole process group is killed, so nothing it started goes on
    behind a failed (and maybe retried) attempt. Its standard output is discarded and its standard error goes to a
    temporary file (the last line names a failure): a background child that keeps them open does not hold the job,
    and a chatty program does not fill the driver's memory."""
    data = json.dumps(body, ensure_ascii=False, allow_nan=False).encode()
    with tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(channel.argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err,
                                    cwd=channel.cwd, env=dict(env), start_new_session=True)
        except OSError as exc:   # no such program, not executable, no such cwd: another attempt gets the same
            raise _Final(f"cannot run {channel.argv[0]!r}: {exc.strerror or type(exc).__name__}") from None
        try:
            proc.communicate(data, timeout=channel.timeout_seconds)   # a program not reading stdin is fine
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise TimeoutError from None
        if proc.returncode != 0:
            size = err.seek(0, os.SEEK_END)
            err.seek(max(0, size - _STDERR_TAIL))
            said = [line for line in err.read().decode(errors="replace").splitlines() if line.strip()]
            raise _CommandFailed(f"{channel.argv[0]} exited with code {proc.returncode}"
                                 + (f": {said[-1].strip()}" if said else ""))


def _smtp(channel: EmailChannel, mail: EmailMessage, password: str | None) -> None:
    try:
        with smtplib.SMTP(channel.host, channel.port, timeout=channel.timeout_seconds) as smtp:
            if channel.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if channel.username is not None and password is not None:
                smtp.login(channel.username, password)
            refused = smtp.send_message(mail, from_addr=channel.sender, to_addrs=channel.to)
    except smtplib.SMTPResponseException as exc:
        if exc.smtp_code >= 500:
            raise _Final(_cause(exc, channel)) from None
        raise
    except smtplib.SMTPRecipientsRefused as exc:
        raise _Final(_refused(exc.recipients)) from None
    if refused:   # delivered to the others: another attempt would send them a second copy
        raise _Final(_refused(refused))


def _refused(recipients: Mapping[str, tuple[int, bytes]]) -> str:
    return "recipients refused: " + ", ".join(f"{a} (SMTP {c} {m.decode(errors='replace')})"
                                              for a, (c, m) in recipients.items())


def _http_error(exc: urllib.error.HTTPError) -> str:
    try:
        answer = exc.read(300).decode(errors="replace")
    except Exception:  # noqa: BLE001 - the status says enough when the body cannot be read
        answer = ""
    finally:
        exc.close()
    return f"HTTP {exc.code} {exc.reason}" + (f": {answer}" if answer.strip() else "")


def _cause(exc: BaseException, channel: ChannelConfig) -> str:
    """One line saying why an attempt failed."""
    if isinstance(exc, urllib.error.HTTPError):
        text = _http_error(exc)
    elif isinstance(exc, TimeoutError) or (isinstance(exc, urllib.error.URLError)
                                           and isinstance(exc.reason, TimeoutError)):
        text = f"timed out after {channel.timeout_seconds:g}s"
    elif isinstance(exc, urllib.error.URLError):
        text = f"cannot connect: {exc.reason}"
    elif isinstance(exc, smtplib.SMTPResponseException):
        reply = exc.smtp_error
        text = f"SMTP {exc.smtp_code} {reply.decode(errors='replace') if isinstance(reply, bytes) else reply}"
    elif isinstance(exc, _Final | _CommandFailed | ConnectionError | smtplib.SMTPException):
        text = str(exc) or type(exc).__name__
    else:
        text = f"{type(exc).__name__}: {exc}"
    return cut(" ".join(text.split()), 500)


def _fragments(secret: str | None) -> list[str]:
    """The texts to mask: the secret, and for a URL its password, its path and query, and their long parts."""
    if not secret:
        return []
    parts = {secret}
    if "://" in secret:
        split = urlsplit(secret)
        parts |= {p for p in (split.password, unquote(split.password or ""), split.query) if p}
        rest = secret.partition(split.netloc)[2]
        if len(rest) > 1:
            parts.add(rest)
        parts |= {s for s in split.path.split("/") if len(s) >= 16}
    return sorted(parts, key=len, reverse=True)


def _mask(text: str, hidden: Sequence[str]) -> str:
    for part in hidden:
        text = text.replace(part, "***")
    return mask_userinfo(text)
