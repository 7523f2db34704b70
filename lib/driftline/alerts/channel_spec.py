"""Configuration of the notification channels (``alerts.channels``: name -> one of the models below).

A channel names where its secret lives, never the secret: an environment variable (``*_env``) or a file
(``*_file``, e.g. a mounted Kubernetes/Docker secret), read at send time by `driftline.alerts.channels`.
A Slack webhook URL and a PagerDuty routing key are secrets themselves; a generic webhook's URL may be
written inline when it carries none. Every refusal is one line saying what was expected and what was found,
and never echoes what may be a secret.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, field_validator, model_validator

from driftline.errors import ConfigError
from driftline.spec import Frozen, mask_userinfo

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
HTTP_URL = re.compile(r"^https?://[^\s/?#]+([/?#]\S*)?$", re.I)
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
_IPV6 = re.compile(r"^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*$")
_ADDRESS = re.compile(r"^[^@\s<>()\[\],;:\"\\]+@(?P<host>\S+)$")


def _env_name(value: str) -> str:
    if not _ENV_NAME.match(value):
        # a URL or key pasted where its variable's name belongs is a secret: never echoed
        found = "a URL (not shown; put it in the variable and name the variable here)" if "://" in value else \
            repr(value)
        raise ValueError(f"expected the name of an environment variable (letters, digits, _), found {found}")
    return value


def _file_path(value: str) -> str:
    if not value.strip() or value != value.strip() or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError(f"expected the path of a file holding the secret, found {value!r}")
    if "://" in value:
        raise ValueError("expected the path of a local file holding the secret, found a URL (not shown)")
    return value


def _on_one_line(value: str | None, what: str) -> str | None:
    """``value`` when unset or a non-blank text without control characters, else a ValueError naming ``what``."""
    if value is not None and (not value.strip() or any(ord(c) < 32 for c in value)):
        raise ValueError(f"expected {what} on one line, found {value!r}")
    return value


def _address(value: str) -> str:
    match = _ADDRESS.match(value)
    if match is None or not _HOST.match(match.group("host")):
        raise ValueError(f"expected an e-mail address like oncall@example.com, found {value!r}")
    return value


EnvName = Annotated[str, AfterValidator(_env_name)]
SecretFile = Annotated[str, AfterValidator(_file_path)]
Address = Annotated[str, AfterValidator(_address)]


def check_http_url(value: str, secret_hint: str) -> str:
    """An http(s) URL without user info (credentials belong in ``secret_hint``: ``url_env`` / ``url_file``)."""
    if not HTTP_URL.match(value):
        raise ValueError(f"expected an http:// or https:// URL, found {mask_userinfo(value)!r}")
    if "@" in re.split(r"[/?#]", value.split("://", 1)[1], maxsplit=1)[0]:
        raise ValueError(f"expected a URL without credentials (put a URL with a user or password in {secret_hint}), "
                         f"found one with user info: {mask_userinfo(value)!r}")
    return value


def _one_of(data: Any, kind: str, keys: tuple[str, ...], required: bool = True) -> None:
    given = [k for k in keys if isinstance(data, dict) and data.get(k) is not None]
    if len(given) > 1 or (required and not given):
        found = " and ".join(given) if given else "none"
        raise ValueError(f"{kind}: expected exactly one of {', '.join(keys)}, found {found}")


class _Delivery(Frozen):
    """Per attempt timeout, retries after the first attempt, and the first retry's wait (doubled each time)."""

    model_config = ConfigDict(hide_input_in_errors=True)  # a refused key may be a secret: errors never echo input

    timeout_seconds: float = 5.0
    retries: int = 2
    backoff_seconds: float = 1.0

    @field_validator("timeout_seconds")
    @classmethod
    def _timeout(cls, value: float) -> float:
        if not 0 < value <= 120:
            raise ValueError(f"expected timeout_seconds in (0, 120], found {value!r}")
        return value

    @field_validator("retries")
    @classmethod
    def _retries(cls, value: int) -> int:
        if not 0 <= value <= 10:
            raise ValueError(f"expected retries from 0 to 10, found {value!r}")
        return value

    @field_validator("backoff_seconds")
    @classmethod
    def _backoff(cls, value: float) -> float:
        if not 0 <= value <= 60:
            raise ValueError(f"expected backoff_seconds from 0 to 60, found {value!r}")
        return value


class WebhookChannel(_Delivery):
    """POST the message as JSON to ``url`` (inline, no credentials), or the URL in ``$url_env`` / ``url_file``
    (may carry ``user:password@``, sent as HTTP basic auth)."""

    type: Literal["webhook"]
    url: str | None = None
    url_env: EnvName | None = None
    url_file: SecretFile | None = None

    @model_validator(mode="before")
    @classmethod
    def _source(cls, data: Any) -> Any:
        _one_of(data, "webhook", ("url", "url_env", "url_file"))
        return data

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else check_http_url(value, "url_env or url_file")


class SlackChannel(_Delivery):
    """POST a Block Kit message to a Slack incoming webhook (or a Slack-compatible one: Mattermost, Rocket.Chat);
    the webhook URL is a secret, so only from ``$url_env`` or ``url_file``."""

    type: Literal["slack"]
    url_env: EnvName | None = None
    url_file: SecretFile | None = None

    @model_validator(mode="before")
    @classmethod
    def _source(cls, data: Any) -> Any:
        if isinstance(data, dict) and "url" in data:
            raise ValueError("slack: expected the webhook URL in url_env or url_file (the URL itself is a secret), "
                             "found it inline in url (not shown)")
        _one_of(data, "slack", ("url_env", "url_file"))
        return data


class PagerDutyChannel(_Delivery):
    """An Events API v2 event (trigger on firing, resolve on resolved; the message's dedup_key is the incident's)."""

    type: Literal["pagerduty"]
    routing_key_env: EnvName | None = None
    routing_key_file: SecretFile | None = None
    url: str = PAGERDUTY_EVENTS_URL

    @model_validator(mode="before")
    @classmethod
    def _source(cls, data: Any) -> Any:
        _one_of(data, "pagerduty", ("routing_key_env", "routing_key_file"))
        return data

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_http_url(value, "routing_key_env or routing_key_file (the key authenticates the event)")


class EmailChannel(_Delivery):
    """A plain-text e-mail over SMTP: STARTTLS when ``starttls`` (certificate verified), login when ``username``
    is set, with the password from ``$password_env`` / ``password_file``."""

    type: Literal["email"]
    host: str
    port: int = 587
    starttls: bool = True
    username: str | None = None
    password_env: EnvName | None = None
    password_file: SecretFile | None = None
    sender: Address
    to: list[Address]

    @model_validator(mode="before")
    @classmethod
    def _source(cls, data: Any) -> Any:
        _one_of(data, "email", ("password_env", "password_file"), required=False)
        if isinstance(data, dict):
            has_password = data.get("password_env") is not None or data.get("password_file") is not None
            if data.get("username") is not None and not has_password:
                raise ValueError("email: expected password_env or password_file with username, found neither")
            if has_password and data.get("username") is None:
                raise ValueError("email: expected username with a password_env/password_file, found no username")
        return data

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not (_HOST.match(value) or _IPV6.match(value)):
            raise ValueError(f"expected an SMTP host name or IP address, found {value!r}")
        return value

    @field_validator("port")
    @classmethod
    def _port(cls, value: int) -> int:
        if not 0 < value < 65536:
            raise ValueError(f"expected a port from 1 to 65535, found {value!r}")
        return value

    @field_validator("username")
    @classmethod
    def _username(cls, value: str | None) -> str | None:
        return _on_one_line(value, "a user name")

    @field_validator("to")
    @classmethod
    def _to(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("expected at least one recipient address, found an empty list")
        return value


class CommandChannel(_Delivery):
    """Run a local program: ``argv`` (the program and its arguments; no shell, so nothing in them is expanded or
    interpreted) in ``cwd`` (default: the job's working directory), with the generic webhook's JSON object on its
    standard input and ``DRIFTLINE_ALERT_MODEL`` / ``_RULE`` / ``_WINDOW`` / ``_STATUS`` / ``_SEVERITY`` /
    ``_DEDUP_KEY`` in its environment. Exit code 0 is delivered; another code, a timeout (the program is killed)
    or a program that cannot be started is a failed attempt. The hook for acting on a verdict: e.g. a
    ``when: retrain`` rule whose command starts the retraining of a monitor-only model where it lives. Not retried
    by default (``retries: 0``): a command that started work should not be run twice blindly."""

    type: Literal["command"]
    argv: list[str]
    cwd: str | None = None
    timeout_seconds: float = 60.0
    retries: int = 0

    @field_validator("argv")
    @classmethod
    def _argv(cls, value: list[str]) -> list[str]:
        if not value or not value[0].strip():
            raise ValueError("expected argv as a program and its arguments, e.g. [scripts/retrain.sh, --fast], "
                             f"found {'an empty list' if not value else 'an empty program name'}")
        bad = [a for a in value if "\x00" in a]
        if bad:
            raise ValueError(f"expected argv without NUL characters, found {bad[0]!r}")
        return value

    @field_validator("cwd")
    @classmethod
    def _cwd(cls, value: str | None) -> str | None:
        return _on_one_line(value, "cwd as a folder path")


ChannelConfig = Annotated[WebhookChannel | SlackChannel | PagerDutyChannel | EmailChannel | CommandChannel,
                          Field(discriminator="type")]


class SecretUnavailable(ConfigError):
    """A channel's secret is not where its config says (the variable unset or empty, the file unreadable)."""


def resolve_secret(*, env: str | None = None, file: str | None = None,
                   environ: Mapping[str, str] = os.environ) -> str:
    """The secret in ``$env`` or in the file ``file``, surrounding white space stripped; `SecretUnavailable`
    naming the variable or file (never a value) when it is unset, empty or unreadable."""
    if env is not None:
        value = environ.get(env, "").strip()
        if not value:
            raise SecretUnavailable(f"expected the secret in environment variable ${env}, found it "
                                    f"{'empty' if env in environ else 'unset'}")
        return value
    if file is None:
        raise ValueError("resolve_secret: expected env or file, found neither")
    try:
        value = Path(file).expanduser().read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SecretUnavailable(f"expected the secret in file {file}, found it unreadable "
                                f"({exc.strerror or type(exc).__name__})") from None
    except UnicodeDecodeError:  # its message quotes the file's bytes: not shown
        raise SecretUnavailable(f"expected the secret in file {file} as UTF-8 text, found other bytes") from None
    if not value:
        raise SecretUnavailable(f"expected the secret in file {file}, found it empty")
    return value
