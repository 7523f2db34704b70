"""``driftline connect-server``: a local Spark Connect server from pyspark's own jars, for ``runtime.remote``.

The server is pyspark's ``bin/spark-submit`` running ``org.apache.spark.sql.connect.service.SparkConnectServer``
(the ``spark-connect`` jar ships with pyspark) with driftline's settings for a session it starts itself (UTC,
Arrow, TIMESTAMP_MICROS Parquet, UI off, quiet log4j2, scratch folders in the workspace — `server_conf`) and
its Python workers on this interpreter (``PYSPARK_PYTHON``), which has driftline installed: the scoring pass and
the Arrow profile fold run there. It listens on ``--host`` (default 127.0.0.1) and ``--port`` (default 15002);
jobs reach it with ``--set runtime.remote=sc://HOST:PORT`` (or ``SPARK_REMOTE``), see ``docs/cluster.md``.

The command runs the server in the foreground (the process becomes spark-submit, then the JVM; stop it with
Ctrl-C or a signal). `server_command` and `wait_ready` let scripts and tests start one in the background.
"""

from __future__ import annotations

import argparse
import os
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from driftline.cli.runner import CliParser, command
from driftline.errors import EnvironmentProblem, UsageError
from driftline.runtime import RuntimeConfig, check_java, session_conf

SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
DEFAULT_PORT = 15002


def spark_home() -> Path:
    """pyspark's own Spark distribution (``bin/spark-submit``, ``jars/``)."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def server_conf(port: int, host: str = "127.0.0.1", master: str = "local[*]", workspace: str | None = None,
                driver_memory: str | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The server's ``--conf`` settings: driftline's settings of a session it starts itself (`session_conf`,
    without its JVM fold and delta jars: a Connect client reaches neither), the gRPC binding, then ``extra``."""
    runtime = RuntimeConfig(master=master, driver_memory=driver_memory, jvm_fold=False, delta_jars=False)
    conf = session_conf(runtime, workspace, submitted=False, quiet=True)
    conf.pop("spark.driftline.jvmFold", None)
    conf.update({
        "spark.connect.grpc.binding.address": host,
        "spark.connect.grpc.binding.port": str(port),
        "spark.connect.grpc.port.maxRetries": "0",   # this port or fail: the clients were told this one
    })
    conf.update(extra or {})
    return conf


def server_command(port: int, host: str = "127.0.0.1", master: str = "local[*]", workspace: str | None = None,
                   driver_memory: str | None = None, extra: dict[str, str] | None = None) -> list[str]:
    """The ``spark-submit`` command line of a Connect server (run it with `server_env`)."""
    cmd = [str(spark_home() / "bin" / "spark-submit"), "--class", SERVER_CLASS, "--master", master,
           "--name", "driftline Spark Connect server"]
    for key, value in server_conf(port, host, master, workspace, driver_memory, extra).items():
        if key != "spark.master":
            cmd += ["--conf", f"{key}={value}"]
    return cmd


def server_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The server's environment: its Python workers (UDFs, ``mapInPandas``/``mapInArrow``) run this interpreter,
    which has driftline and its dependencies; ``SPARK_HOME`` is pyspark's; no ``SPARK_REMOTE`` (it is the server)."""
    env = dict(os.environ if base is None else base)
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    env["SPARK_HOME"] = str(spark_home())
    for key in ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED", "SPARK_LOCAL_REMOTE", "PYSPARK_GATEWAY_PORT"):
        env.pop(key, None)
    return env


def wait_ready(host: str, port: int, timeout: float = 120.0, process: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until the server accepts connections on (host, port); `EnvironmentProblem` when ``process`` exits
    first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise EnvironmentProblem(f"Spark Connect server on {host}:{port}: expected it to start, found it exited "
                                     f"with {process.returncode}")
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise EnvironmentProblem(f"Spark Connect server on {host}:{port}: not listening after "
                                         f"{timeout:.0f} s") from None
            time.sleep(0.25)


def connect_server_command(argv: Sequence[str]) -> int:
    """``driftline connect-server``: run a local Spark Connect server from pyspark's jars in the foreground."""
    parser = CliParser(
        prog="driftline connect-server",
        description="Run a Spark Connect server from pyspark's own jars (spark-submit of SparkConnectServer) with "
                    "driftline's session settings and its Python workers on this interpreter. Jobs use it with "
                    "--set runtime.remote=sc://HOST:PORT (or SPARK_REMOTE=sc://HOST:PORT). Stop it with Ctrl-C.",
        epilog="exit codes: the server's · 2 no Java 17+, or a wrong option",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"gRPC port (default {DEFAULT_PORT})")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; 0.0.0.0 for every interface — the "
                             "server has no authentication)")
    parser.add_argument("--master", default="local[*]", help="the server's Spark master (default local[*])")
    parser.add_argument("--driver-memory", metavar="SIZE", help="the server JVM's heap, e.g. 4g")
    parser.add_argument("--workspace", metavar="DIR",
                        help="scratch folders (spark-tmp, spark-warehouse) and log4j2 file go under DIR "
                             "(default: the system's temporary folder)")
    parser.add_argument("--conf", dest="confs", action="append", default=[], metavar="KEY=VALUE",
                        help="an extra Spark setting of the server (repeatable), e.g. --conf spark.jars=...")
    parser.add_argument("--print-command", action="store_true", help="print the spark-submit command and exit")

    def body(args: argparse.Namespace) -> int:
        extra = {}
        for item in args.confs:
            key, sep, value = item.partition("=")
            if not sep or not key.startswith("spark."):
                raise UsageError(f"--conf: expected spark.KEY=VALUE, found {item!r}")
            extra[key] = value
        port = args.port
        if not 0 < port < 65536:
            raise UsageError(f"--port: expected 1-65535, found {port}")
        cmd = server_command(port, args.host, args.master, args.workspace,
                             args.driver_memory, extra)
        if args.print_command:
            print(shlex.join(cmd))
            return 0
        check_java()
        print(f"driftline connect-server: Spark Connect on sc://{args.host}:{port} "
              f"(jobs: --set runtime.remote=sc://{args.host}:{port})", file=sys.stderr, flush=True)
        os.execve(cmd[0], cmd, server_env())   # this process becomes the server: signals reach it directly
        return 0   # not reached

    return command("driftline connect-server", parser, argv, body)


def main() -> int:
    return connect_server_command(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
