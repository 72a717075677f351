"""The plugin side of wanLLMDB's out-of-process plugin protocol.

A plugin program is started by the kernel (``wanllmdb serve --plugins
<folder>``) and serves gRPC on a unix socket the kernel chooses. This module
does the protocol's part so a plugin only writes its services:

- ``check_handshake()``: refuses to run unless started by wanLLMDB;
- ``load_protos()``: the plugin's and the kernel's contracts, compiled at
  run time from ``WANLLMDB_PROTO_PATH`` (no generated files to commit);
- ``Plugin`` / ``serve()``: the gRPC server with ``grpc.health.v1.Health``
  and ``wanllmdb.plugin.v1.PluginController``, the handshake line on stdout,
  a graceful stop on Shutdown, SIGTERM, SIGINT and the end of stdin;
- JSON log lines on stderr for the standard ``logging`` module;
- ``caller()``: who the kernel is calling for;
- ``Kernel``: calls back to the kernel, as the plugin or as its caller;
- ``abort()`` / ``KernelError``: errors the wanLLMDB way (``wldb-error-*``
  trailing metadata).

Copy this file beside your plugin; it needs only grpcio, grpcio-tools and
protobuf. The full protocol is docs/adr/0019-out-of-process-plugins.md.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import stat
import sys
import threading
from concurrent import futures
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Callable, Iterable, Optional, Sequence

import grpc

MAGIC_COOKIE_ENV = "WANLLMDB_PLUGIN_MAGIC_COOKIE"
MAGIC_COOKIE = "wanllmdb-plugin-7c1f2f4e"
PROTOCOL_VERSIONS_ENV = "WANLLMDB_PLUGIN_PROTOCOL_VERSIONS"
PROTOCOL_VERSION = "1"
SOCKET_ENV = "WANLLMDB_PLUGIN_SOCKET"
PROTO_PATH_ENV = "WANLLMDB_PROTO_PATH"
KERNEL_ADDRESS_ENV = "WANLLMDB_KERNEL_ADDRESS"
TOKEN_ENV = "WANLLMDB_PLUGIN_TOKEN"
LOG_LEVEL_ENV = "WANLLMDB_LOG_LEVEL"

# Invocation metadata the kernel sends with every call to the plugin.
CALLER_ID_KEY = "x-wanllmdb-caller-id"
CALLER_KIND_KEY = "x-wanllmdb-caller-kind"
CALLER_NAME_KEY = "x-wanllmdb-caller-name"
REQUEST_ID_KEY = "x-request-id"
CALL_TOKEN_KEY = "x-wanllmdb-call-token"

# Trailing metadata of a failed call, both ways.
ERROR_CODE_KEY = "wldb-error-code"
ERROR_DETAILS_KEY = "wldb-error-details-bin"
ERROR_CODE_PATTERN = re.compile(r"^WLDB_ERR_[A-Z0-9_]+$")

MAX_SHUTDOWN_GRACE_MS = 5000
MIN_SHUTDOWN_GRACE_MS = 100

_log = logging.getLogger("wanllmdb_plugin")


# --------------------------------------------------------------------------
# Handshake


def check_handshake() -> None:
    """Exit with a clear message unless the kernel started this program.

    The kernel sets a magic cookie and the protocol versions it speaks; a
    person running the program by hand gets told how to start it instead of
    a program waiting for nothing.
    """
    if os.environ.get(MAGIC_COOKIE_ENV) != MAGIC_COOKIE:
        _fail(
            "this program is a wanLLMDB plugin: start it with "
            "`wanllmdb serve --plugins <folder>`"
        )
    offered = [v.strip() for v in os.environ.get(PROTOCOL_VERSIONS_ENV, "").split(",")]
    if PROTOCOL_VERSION not in offered:
        _fail(
            f"this wanLLMDB plugin speaks plugin protocol version {PROTOCOL_VERSION}, "
            f"but the kernel offers {', '.join(v for v in offered if v) or 'none'} "
            f"({PROTOCOL_VERSIONS_ENV}); use a wanLLMDB that supports it"
        )
    if not os.environ.get(SOCKET_ENV):
        _fail(f"{SOCKET_ENV} is not set: the kernel names the socket to serve on")


def _fail(message: str) -> None:
    """Print ``message`` to stderr and exit 1."""
    print(message, file=sys.stderr, flush=True)
    sys.exit(1)


# --------------------------------------------------------------------------
# Contracts


def load_protos(*relative_paths: str) -> list[tuple[Any, Any]]:
    """Compile .proto files at run time and return their modules.

    Each path is relative to a directory of ``WANLLMDB_PROTO_PATH``
    (':'-separated, set by the kernel: the plugin's proto folder and the
    kernel's), e.g. ``"wanllmdb/projects/v1/projects.proto"``. Returns one
    ``(pb2, pb2_grpc)`` pair per path, in order.
    """
    _add_proto_path()
    return [grpc.protos_and_services(path) for path in relative_paths]


def _add_proto_path() -> None:
    """Put the proto directories on ``sys.path``, where grpc looks for them.

    ``WANLLMDB_PROTO_PATH`` goes in front, in its order; grpc_tools' copy of
    the well-known types (google/protobuf/*.proto) goes last.
    """
    dirs = [d for d in os.environ.get(PROTO_PATH_ENV, "").split(os.pathsep) if d]
    sys.path[:0] = [d for d in dirs if d not in sys.path]
    well_known = str(resources.files("grpc_tools") / "_proto")
    if well_known not in sys.path:
        sys.path.append(well_known)


# Compiled on first use: a program stopped by check_handshake() never needs them.
_protocol_modules: Optional[dict[str, Any]] = None


def _protocol() -> dict[str, Any]:
    """The health and controller modules the protocol itself serves."""
    global _protocol_modules
    if _protocol_modules is None:
        (health, health_grpc), (controller, controller_grpc) = load_protos(
            "health/v1/health.proto", "wanllmdb/plugin/v1/controller.proto"
        )
        _protocol_modules = {
            "health": health,
            "health_grpc": health_grpc,
            "controller": controller,
            "controller_grpc": controller_grpc,
        }
    return _protocol_modules


# --------------------------------------------------------------------------
# Logging


_LEVEL_NAMES = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warn",
    logging.ERROR: "error",
    logging.CRITICAL: "error",
}

# What a LogRecord carries by itself; anything else came from `extra=`.
_RECORD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object: time, level, msg, logger, extras.

    ``level`` is one of "debug", "info", "warn", "error"; ``time`` is in
    milliseconds since the epoch; an exception's traceback goes in ``err``.
    """

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as a single JSON line (no newline)."""
        line: dict[str, Any] = {
            "time": int(record.created * 1000),
            "level": _level_name(record.levelno),
            "msg": record.getMessage(),
            "logger": record.name,
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRS and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["err"] = self.formatException(record.exc_info)
        elif record.stack_info:
            line["err"] = record.stack_info
        return json.dumps(line, default=str, ensure_ascii=False)


def _level_name(levelno: int) -> str:
    """The protocol's name for a logging level (custom levels round down)."""
    for threshold in (logging.CRITICAL, logging.ERROR, logging.WARNING, logging.INFO):
        if levelno >= threshold:
            return _LEVEL_NAMES[threshold]
    return "debug"


def setup_logging(level: Optional[str] = None) -> None:
    """Send every log record to stderr as a JSON line (root logger).

    The level is ``level``, else ``WANLLMDB_LOG_LEVEL``, else debug (the
    kernel filters what it passes on). Uncaught exceptions, in the main
    thread or any other, are logged as errors too.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_logging_level(level or os.environ.get(LOG_LEVEL_ENV, "debug")))

    def log_uncaught(exc_type, exc, tb) -> None:
        _log.error("uncaught exception", exc_info=(exc_type, exc, tb))

    sys.excepthook = log_uncaught
    threading.excepthook = lambda args: log_uncaught(
        args.exc_type, args.exc_value, args.exc_traceback
    )


def _logging_level(name: str) -> int:
    """Map a wanLLMDB level name (pino's: trace..fatal, silent) to logging's."""
    levels = {
        "trace": logging.DEBUG,
        "debug": logging.DEBUG,
        "info": logging.INFO,
        "warn": logging.WARNING,
        "warning": logging.WARNING,
        "error": logging.ERROR,
        "fatal": logging.CRITICAL,
        "silent": logging.CRITICAL + 1,
    }
    return levels.get(name.strip().lower(), logging.DEBUG)


# --------------------------------------------------------------------------
# Callers


@dataclass(frozen=True)
class Caller:
    """Who the kernel is calling the plugin for (from the call's metadata).

    ``kind`` is the principal's kind (e.g. a user or an API key), ``call_token``
    lets the plugin call the kernel back as this caller (see ``Kernel.call``).
    Fields the kernel did not send are ''. The token is left out of the
    repr, so logging a caller does not leak it.
    """

    id: str = ""
    kind: str = ""
    name: str = ""
    request_id: str = ""
    call_token: str = field(default="", repr=False)


def caller(context: grpc.ServicerContext) -> Caller:
    """Read the caller of the current call from its invocation metadata."""
    metadata = {key.lower(): value for key, value in context.invocation_metadata() or ()}

    def text(key: str) -> str:
        value = metadata.get(key, "")
        return value if isinstance(value, str) else value.decode("utf-8", "replace")

    return Caller(
        id=text(CALLER_ID_KEY),
        kind=text(CALLER_KIND_KEY),
        name=text(CALLER_NAME_KEY),
        request_id=text(REQUEST_ID_KEY),
        call_token=text(CALL_TOKEN_KEY),
    )


# --------------------------------------------------------------------------
# Errors


ErrorDetail = dict  # {"field"?: str, "message": str}


def abort(
    context: grpc.ServicerContext,
    status: grpc.StatusCode,
    code: str,
    message: str,
    details: Optional[Sequence[ErrorDetail]] = None,
) -> None:
    """Fail the current call the wanLLMDB way; never returns.

    ``code`` is a wanLLMDB error code (``WLDB_ERR_...``) and ``details`` a
    list of ``{"field"?: ..., "message": ...}``; both travel in trailing
    metadata, beside the gRPC ``status`` and ``message``.
    """
    if not ERROR_CODE_PATTERN.match(code):
        raise ValueError(f"not a wanLLMDB error code: {code!r}")
    context.set_trailing_metadata(
        (
            (ERROR_CODE_KEY, code),
            (ERROR_DETAILS_KEY, json.dumps(list(details or [])).encode("utf-8")),
        )
    )
    context.abort(status, message)


class KernelError(Exception):
    """A call back to the kernel failed.

    ``status`` is the gRPC status code, ``code`` the wanLLMDB error code (None
    when the kernel sent none, e.g. it could not be reached), ``message``
    the status message and ``details`` the list of ``{field?, message}``.
    """

    def __init__(
        self,
        status: grpc.StatusCode,
        code: Optional[str],
        message: str,
        details: Optional[list[ErrorDetail]] = None,
    ) -> None:
        super().__init__(f"{code or status.name}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> "KernelError":
        """Read status, message and the ``wldb-error-*`` trailers of a failed call.

        ``error`` is what a unary stub call raises: also a ``grpc.Call``.
        """
        status, message = error.code(), error.details() or ""
        trailers = dict(error.trailing_metadata() or ())
        code = trailers.get(ERROR_CODE_KEY)
        if not isinstance(code, str) or not ERROR_CODE_PATTERN.match(code):
            # Not the kernel's answer: grpc's own (unreachable, deadline...).
            return cls(status, None, f"no answer from the kernel ({status.name}: {message})")
        details: list[ErrorDetail] = []
        raw = trailers.get(ERROR_DETAILS_KEY)
        if raw:
            try:
                parsed = json.loads(raw)
                details = parsed if isinstance(parsed, list) else []
            except ValueError:
                pass  # details are optional
        return cls(status, code, message, details)

    def abort(self, context: grpc.ServicerContext) -> None:
        """Fail the current call with this error, as the kernel reported it."""
        abort(context, self.status, self.code or "WLDB_ERR_INTERNAL", self.message, self.details)


# --------------------------------------------------------------------------
# Calls back to the kernel


class Kernel:
    """A client of the kernel's gRPC services, for calls back from the plugin.

    Every call carries the plugin's token (``WANLLMDB_PLUGIN_TOKEN``): the
    kernel acts as the plugin's own principal, which holds the permissions
    the manifest declares. Pass ``on_behalf_of`` (the call's context, or its
    ``Caller``) to act as the caller of the current call instead.
    """

    def __init__(self, address: Optional[str] = None, token: Optional[str] = None) -> None:
        """Open a channel to ``address`` (default ``WANLLMDB_KERNEL_ADDRESS``)."""
        self.address = address or os.environ.get(KERNEL_ADDRESS_ENV, "")
        self.token = token if token is not None else os.environ.get(TOKEN_ENV, "")
        if not self.address:
            raise RuntimeError(f"{KERNEL_ADDRESS_ENV} is not set: no kernel to call back")
        self.channel = grpc.insecure_channel(self.address)

    def stub(self, stub_class: Callable[[grpc.Channel], Any]) -> Any:
        """A stub of a kernel service, e.g. ``kernel.stub(ProjectServiceStub)``."""
        return stub_class(self.channel)

    def call(
        self,
        method: Callable[..., Any],
        request: Any,
        *,
        on_behalf_of: Any = None,
        timeout: float = 10,
    ) -> Any:
        """Make a unary call (``method`` is a stub's method) and return the answer.

        Raises ``KernelError`` when the kernel answers with an error.
        """
        metadata = [("authorization", f"Bearer {self.token}")]
        if on_behalf_of is not None:
            who = on_behalf_of if isinstance(on_behalf_of, Caller) else caller(on_behalf_of)
            if who.call_token:
                metadata.append((CALL_TOKEN_KEY, who.call_token))
            if who.request_id:
                metadata.append((REQUEST_ID_KEY, who.request_id))
        try:
            return method(request, metadata=metadata, timeout=timeout)
        except grpc.RpcError as error:
            raise KernelError.from_rpc_error(error) from error

    def close(self) -> None:
        """Close the channel."""
        self.channel.close()

    def __enter__(self) -> "Kernel":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------
# Serving


class _ErrorInterceptor(grpc.ServerInterceptor):
    """Turns an exception a handler lets escape into WLDB_ERR_INTERNAL.

    The traceback is logged (field ``err``); the caller gets a generic
    message, not the exception's text. Aborted calls pass through.
    """

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        wrapped = {}
        for kind in ("unary_unary", "unary_stream", "stream_unary", "stream_stream"):
            behaviour = getattr(handler, kind)
            if behaviour is not None:
                streams = kind.endswith("_stream")
                wrapped[kind] = _guard(behaviour, method, streams)
        return handler._replace(**wrapped)


def _guard(behaviour: Callable, method: str, streams: bool) -> Callable:
    """Wrap a handler behaviour so escaping exceptions are logged and hidden."""
    if streams:

        def guarded_stream(request, context):
            try:
                yield from behaviour(request, context)
            except Exception:
                if _aborted(context):
                    raise
                _internal_error(context, method)

        return guarded_stream

    def guarded(request, context):
        try:
            return behaviour(request, context)
        except Exception:
            if _aborted(context):
                raise
            _internal_error(context, method)

    return guarded


def _aborted(context: grpc.ServicerContext) -> bool:
    """Whether the handler chose the call's status (context.abort raises)."""
    code = context.code()
    return code is not None and code != grpc.StatusCode.OK


def _internal_error(context: grpc.ServicerContext, method: str) -> None:
    """Log the exception being handled and fail the call with WLDB_ERR_INTERNAL."""
    _log.error("handler failed", exc_info=True, extra={"method": method})
    abort(
        context,
        grpc.StatusCode.INTERNAL,
        "WLDB_ERR_INTERNAL",
        "The plugin met an unexpected error. It has been logged; retry, "
        "and report it if it persists.",
    )


class Plugin:
    """A plugin program's gRPC server, run the way the kernel expects.

    Typical use::

        plugin = Plugin(service_names=["acme.things.v1.ThingService"])
        add_ThingServiceServicer_to_server(Things(), plugin.server)
        plugin.start()
        plugin.wait()

    Constructing it checks the handshake (exits 1 when not started by
    wanLLMDB) and sets up JSON logging; ``start()`` adds the health and
    controller services, binds the socket and prints the handshake line;
    ``wait()`` blocks until Shutdown, SIGTERM/SIGINT or the end of stdin
    (the kernel died) stopped the server.
    """

    def __init__(self, *, service_names: Iterable[str], max_workers: Optional[int] = None) -> None:
        """Prepare a server for the services named (full names, for health)."""
        check_handshake()
        setup_logging()
        self.service_names = frozenset(service_names)
        self.socket_path = os.environ[SOCKET_ENV]
        # Stray print()s would corrupt the handshake: send them to stderr.
        self._stdout = sys.stdout
        sys.stdout = sys.stderr
        self._stopping = threading.Event()
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="plugin"),
            interceptors=[_ErrorInterceptor()],
        )

    def start(self) -> None:
        """Serve on the kernel's socket, then announce it on stdout."""
        protocol = _protocol()
        protocol["health_grpc"].add_HealthServicer_to_server(_Health(self), self.server)
        protocol["controller_grpc"].add_PluginControllerServicer_to_server(
            _Controller(self), self.server
        )
        _remove_stale_socket(self.socket_path)
        try:
            self.server.add_insecure_port(f"unix:{self.socket_path}")
        except RuntimeError as error:
            _log.error("cannot listen", extra={"socket": self.socket_path, "error": str(error)})
            sys.exit(1)
        self.server.start()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        self._watch_stdin()
        self._stdout.write(f"1|{PROTOCOL_VERSION}|unix|{self.socket_path}|grpc\n")
        self._stdout.flush()

    def stop(self, grace_s: float, reason: str) -> None:
        """Stop serving in the background; in-flight calls get ``grace_s``."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        _log.info("stopping", extra={"reason": reason, "grace_ms": int(grace_s * 1000)})
        threading.Thread(target=self.server.stop, args=(grace_s,), name="plugin-stop").start()

    @property
    def stopping(self) -> bool:
        """Whether the server has been asked to stop."""
        return self._stopping.is_set()

    def wait(self) -> int:
        """Block until the server has stopped; return the exit status (0)."""
        self.server.wait_for_termination()
        _log.debug("stopped")
        return 0

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self.stop(MAX_SHUTDOWN_GRACE_MS / 1000, signal.Signals(signum).name)

    def _watch_stdin(self) -> None:
        """Stop when stdin ends: the kernel holds its other end, so it died.

        This is how the program ends itself after the server was killed, even
        with kill -9. Only a pipe or a socket (what the kernel gives) is
        watched: a terminal or /dev/null says nothing about the kernel.
        """
        try:
            mode = os.fstat(0).st_mode
        except OSError:
            return
        if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
            return

        def read_until_eof() -> None:
            try:
                while os.read(0, 4096):
                    pass
            except OSError:
                pass
            self.stop(MAX_SHUTDOWN_GRACE_MS / 1000, "stdin closed")

        threading.Thread(target=read_until_eof, name="plugin-stdin", daemon=True).start()


def serve(
    add_services: Callable[[grpc.Server], None],
    *,
    service_names: Iterable[str],
    max_workers: Optional[int] = None,
) -> None:
    """Run a plugin until the kernel stops it, then exit 0.

    ``add_services(server)`` adds the plugin's servicers; ``service_names``
    are their full names (e.g. ``"acme.things.v1.ThingService"``).
    """
    plugin = Plugin(service_names=service_names, max_workers=max_workers)
    add_services(plugin.server)
    plugin.start()
    sys.exit(plugin.wait())


def _remove_stale_socket(path: str) -> None:
    """Remove a socket left behind at ``path`` by an earlier run."""
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass


class _Health:
    """grpc.health.v1.Health: SERVING for '' and the plugin's services.

    Watch is not implemented (UNIMPLEMENTED): the kernel polls Check.
    """

    def __init__(self, plugin: Plugin) -> None:
        self._plugin = plugin

    def _status(self, service: str) -> Optional[int]:
        health = _protocol()["health"].HealthCheckResponse
        if service and service not in self._plugin.service_names:
            return None
        return health.NOT_SERVING if self._plugin.stopping else health.SERVING

    def Check(self, request, context):
        """The status of ``request.service``; NOT_FOUND for unknown services."""
        status = self._status(request.service)
        if status is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return _protocol()["health"].HealthCheckResponse(status=status)

    def Watch(self, request, context):
        """Not served: clients are told to fall back to Check."""
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "Watch is not served; poll Check")

    def List(self, request, context):
        """The status of every service this program serves."""
        health = _protocol()["health"]
        names = ["", *sorted(self._plugin.service_names)]
        return health.HealthListResponse(
            statuses={name: health.HealthCheckResponse(status=self._status(name)) for name in names}
        )


class _Controller:
    """wanllmdb.plugin.v1.PluginController: how the kernel stops the program."""

    def __init__(self, plugin: Plugin) -> None:
        self._plugin = plugin

    def Shutdown(self, request, context):
        """Answer at once, then stop with a grace of at most 5 s."""
        grace_ms = min(request.grace_ms or MAX_SHUTDOWN_GRACE_MS, MAX_SHUTDOWN_GRACE_MS)
        # A floor, so that stopping never cancels this very answer.
        self._plugin.stop(max(grace_ms, MIN_SHUTDOWN_GRACE_MS) / 1000, "Shutdown")
        return _protocol()["controller"].ShutdownResponse()
