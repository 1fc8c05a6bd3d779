"""Gateway settings: the JSON5 config file (same keys as the real gateway), env and flags.

Precedence for each setting: command-line flag > environment > config file > default.  This
module only reads; it never rewrites the user's config file.  A generated token is persisted
in the state dir instead (``gateway-token``), written atomically.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

DEFAULT_PORT = 18789
BIND_MODES = ("loopback", "lan", "custom")
AUTH_MODES = ("none", "token", "password")
METRICS_MODES = ("off", "token", "loopback")  # who may scrape /metrics (web/metrics.py)
TOKEN_FILE = "gateway-token"


class ConfigError(Exception):
    """The config file or the options are unusable; the message says why and where."""


@attrs.frozen
class GatewaySettings:
    port: int
    bind: str
    host: str
    auth_mode: str
    token: str | None
    password: str | None
    token_source: str
    config_path: Path
    state_dir: Path
    config_exists: bool
    handshake_timeout_ms: int = 15_000
    max_preauth_per_ip: int = 32
    auto_approve_local: bool = True
    tls_enabled: bool = False
    tls_cert_path: Path | None = None
    tls_key_path: Path | None = None
    trusted_proxies: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    # Control UI (gateway.controlUi.*): enabled hot-applies; basePath and root need a restart.
    control_ui_enabled: bool = True
    control_ui_base_path: str = ""
    control_ui_root: Path | None = None
    # HTTP surface (§11): OpenAI-compatible endpoints, /tools/invoke policy, hooks.
    chat_completions_enabled: bool = False
    responses_enabled: bool = False
    tools_allow: tuple[str, ...] = ()
    tools_deny: tuple[str, ...] = ()
    hooks_enabled: bool = False
    hooks_token: str | None = None
    hooks_path: str = "/hooks"
    hooks_allow_request_session_key: bool = False
    # Prometheus /metrics (ours; the real gateway has it only as a plugin): off|token|loopback
    metrics: str = "token"
    raw: Mapping[str, Any] = attrs.field(factory=dict)

    @property
    def listen_host(self) -> str:
        if self.bind == "loopback":
            return "127.0.0.1"
        if self.bind == "lan":
            return "0.0.0.0"
        return self.host

    def listen_hosts(self, ipv6_loopback: bool = True) -> list[str]:
        """Addresses to bind; loopback binds 127.0.0.1 and, on a fixed port, ::1 too."""
        hosts = [self.listen_host]
        if self.bind == "loopback" and self.port != 0 and ipv6_loopback:
            hosts.append("::1")
        return hosts

    @property
    def secret(self) -> str | None:
        return self.token if self.auth_mode == "token" else self.password


def default_state_dir(env: Mapping[str, str]) -> Path:
    if env.get("OPENCLAW_STATE_DIR"):
        return Path(env["OPENCLAW_STATE_DIR"]).expanduser()
    return Path(env.get("HOME") or Path.home()) / ".openclaw"


def load_config_file(path: Path) -> dict[str, Any] | None:
    """Parse the JSON5 file; ``None`` when it does not exist."""
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ConfigError(f"cannot read config {path}: {e.strerror}") from None
    try:
        data = decode_json5(text)
    except ValueError as e:
        raise ConfigError(f"invalid JSON5 in {path}: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be an object")
    return data


_INT_MIN, _INT_MAX = -(2 ** 63), 2 ** 64 - 1  # what orjson can encode


def decode_json5(text: str) -> Any:
    """JSON5 text as Python values; ``ValueError`` with the parser's message.  An integer
    past 64 bits becomes a float, as every number is a double in the reference (and orjson
    could not encode it back in a response)."""
    import pyjson5  # only when a config file exists (saves ~1 MiB otherwise)

    try:
        data = pyjson5.decode(text)
    except Exception as e:  # pyjson5 raises several exception types
        raise ValueError(str(e)) from None
    return _doubles(data)


def _doubles(value: Any) -> Any:
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)) or type(item) is int:
                value[key] = _doubles(item)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, (dict, list)) or type(item) is int:
                value[i] = _doubles(item)
    elif type(value) is int and not _INT_MIN <= value <= _INT_MAX:
        return float(value)
    return value


def _dig(data: Mapping[str, Any], *keys: str) -> Any:
    cur: Any = data
    for key in keys:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(key)
    return cur


def _str_list(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} must be an array of strings")
    return tuple(value)


def resolve(
    options: Mapping[str, Any], env: Mapping[str, str] | None = None, create_token: bool = True
) -> GatewaySettings:
    """Combine flags (``options``), environment and the config file into settings.

    With token auth and no token anywhere, one is generated and persisted in the state dir
    (unless ``create_token`` is false: then an existing persisted token is used, if any).
    """
    env = os.environ if env is None else env
    state_dir = Path(options.get("state-dir") or default_state_dir(env)).expanduser()
    config_path = Path(
        options.get("config") or env.get("OPENCLAW_CONFIG_PATH") or state_dir / "openclaw.json"
    ).expanduser()
    data = load_config_file(config_path)
    return resolve_data(options, env, data, create_token)


def config_location(options: Mapping[str, Any], env: Mapping[str, str]) -> tuple[Path, Path]:
    """``(state_dir, config_path)`` as ``resolve`` computes them."""
    state_dir = Path(options.get("state-dir") or default_state_dir(env)).expanduser()
    config_path = Path(
        options.get("config") or env.get("OPENCLAW_CONFIG_PATH") or state_dir / "openclaw.json"
    ).expanduser()
    return state_dir, config_path


def resolve_data(
    options: Mapping[str, Any], env: Mapping[str, str], data: Mapping[str, Any] | None,
    create_token: bool = True,
) -> GatewaySettings:
    """``resolve`` for an already parsed file (``None``: no file); used by hot reload so the
    file is read once and flags > env > file precedence is the same as at startup."""
    state_dir, config_path = config_location(options, env)
    cfg = data or {}
    gw = _dig(cfg, "gateway") or {}

    port_src = options.get("port") or env.get("OPENCLAW_GATEWAY_PORT") or gw.get("port")
    try:
        port = int(port_src) if port_src is not None else DEFAULT_PORT
    except (TypeError, ValueError):
        raise ConfigError(f"invalid port: {port_src!r}") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"invalid port: {port}")

    bind = options.get("bind") or gw.get("bind") or "loopback"
    if bind not in BIND_MODES:
        raise ConfigError(f"gateway.bind must be one of {', '.join(BIND_MODES)} (got {bind!r})")
    host = options.get("host") or gw.get("customBindHost") or "127.0.0.1"

    auth = _dig(gw, "auth") or {}
    token = options.get("token") or env.get("OPENCLAW_GATEWAY_TOKEN") or auth.get("token")
    password = (
        options.get("password") or env.get("OPENCLAW_GATEWAY_PASSWORD") or auth.get("password")
    )
    mode = options.get("auth") or auth.get("mode")
    if mode is None:
        mode = "password" if password and not token else "token"
    if mode not in AUTH_MODES:
        raise ConfigError(f"gateway.auth.mode must be one of {', '.join(AUTH_MODES)} (got {mode!r})")
    for name, value in (("token", token), ("password", password)):
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"gateway.auth.{name} must be a string")

    token_source = "flag/env/config" if token else "none"
    if mode == "token" and not token:
        if create_token:
            token, token_source = load_or_create_token(state_dir)
        elif token_path(state_dir).exists():
            token = token_path(state_dir).read_text("utf-8").strip() or None
            token_source = "state"
    if mode == "password" and not password:
        raise ConfigError("auth mode 'password' needs --password, OPENCLAW_GATEWAY_PASSWORD "
                          "or gateway.auth.password")

    metrics = options.get("metrics") or env.get("OPENCLAW_TW_METRICS") or "token"
    if metrics not in METRICS_MODES:
        raise ConfigError(f"--metrics / OPENCLAW_TW_METRICS must be one of "
                          f"{', '.join(METRICS_MODES)} (got {metrics!r})")

    limits = {
        "handshake_timeout_ms": _env_int(env, "OPENCLAW_HANDSHAKE_TIMEOUT_MS", 15_000),
        "max_preauth_per_ip": _env_int(env, "OPENCLAW_MAX_PREAUTH_CONNECTIONS_PER_IP", 32),
    }
    return GatewaySettings(
        **limits,
        port=port,
        bind=bind,
        host=host,
        auth_mode=mode,
        token=token,
        password=password,
        token_source=token_source,
        config_path=config_path,
        state_dir=state_dir,
        config_exists=data is not None,
        trusted_proxies=_str_list(gw.get("trustedProxies"), "gateway.trustedProxies"),
        auto_approve_local=_dig(gw, "nodes", "pairing", "autoApproveLocal") is not False,
        tls_enabled=bool(options.get("tls") or _dig(gw, "tls", "enabled")),
        tls_cert_path=_opt_path(_dig(gw, "tls", "certPath")),
        tls_key_path=_opt_path(_dig(gw, "tls", "keyPath")),
        allowed_origins=_str_list(
            _dig(gw, "controlUi", "allowedOrigins"), "gateway.controlUi.allowedOrigins"
        ),
        **_http_settings(cfg),
        metrics=metrics,
        raw=cfg,
    )


def _http_settings(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """``gateway.http.endpoints.*``, ``gateway.controlUi.*`` (but ``allowedOrigins``),
    ``gateway.tools.{allow,deny}`` and ``hooks.*``."""
    endpoints = _dig(cfg, "gateway", "http", "endpoints") or {}
    hooks = _dig(cfg, "hooks") or {}
    token = hooks.get("token") if isinstance(hooks, Mapping) else None
    if token is not None and not isinstance(token, str):
        raise ConfigError("hooks.token must be a string")
    path = _dig(cfg, "hooks", "path")
    if path is None:
        path = "/hooks"
    if not isinstance(path, str):
        raise ConfigError("hooks.path must be a string")
    path = "/" + path.strip().strip("/")
    if path == "/":
        raise ConfigError("hooks.path cannot be '/'")
    ui = _dig(cfg, "gateway", "controlUi") or {}
    base_path = ui.get("basePath") if isinstance(ui, Mapping) else None
    if base_path is not None and not isinstance(base_path, str):
        raise ConfigError("gateway.controlUi.basePath must be a string")
    ui_root = ui.get("root") if isinstance(ui, Mapping) else None
    if ui_root is not None and (not isinstance(ui_root, str) or not ui_root.strip()):
        raise ConfigError("gateway.controlUi.root must be a non-empty string")
    return {
        "control_ui_enabled": _dig(ui, "enabled") is not False,
        "control_ui_base_path": normalize_base_path(base_path),
        "control_ui_root": Path(ui_root.strip()).expanduser() if ui_root else None,
        "chat_completions_enabled": _dig(endpoints, "chatCompletions", "enabled") is True,
        "responses_enabled": _dig(endpoints, "responses", "enabled") is True,
        "tools_allow": _str_list(_dig(cfg, "gateway", "tools", "allow"), "gateway.tools.allow"),
        "tools_deny": _str_list(_dig(cfg, "gateway", "tools", "deny"), "gateway.tools.deny"),
        "hooks_enabled": _dig(cfg, "hooks", "enabled") is True,
        "hooks_token": token or None,
        "hooks_path": path,
        "hooks_allow_request_session_key": _dig(cfg, "hooks", "allowRequestSessionKey") is True,
    }


def normalize_base_path(value: str | None) -> str:
    """``gateway.controlUi.basePath`` as the reference normalizes it: ``""`` or
    ``/prefix`` (a leading slash, no trailing one)."""
    value = (value or "").strip()
    if not value or value == "/":
        return ""
    if not value.startswith("/"):
        value = "/" + value
    return value[:-1] if value.endswith("/") else value


def _opt_path(value: Any) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError("gateway.tls.certPath/keyPath must be non-empty strings")
    return Path(value).expanduser()


def _env_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number (got {raw!r})") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive (got {value})")
    return value


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write via a temp file, fsync, rename: readers see the old or the new file, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def token_path(state_dir: Path) -> Path:
    return state_dir / TOKEN_FILE


def load_or_create_token(state_dir: Path) -> tuple[str, str]:
    """The persisted generated token, creating it on first use: ``(token, source)``."""
    path = token_path(state_dir)
    try:
        existing = path.read_text("utf-8").strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return existing, "state"
    token = secrets.token_urlsafe(32)
    atomic_write(path, token.encode("ascii") + b"\n")
    return token, "generated"
