"""Settings once: defaults for any option from a file or the environment.

Where defaults come from, the first that has a value winning:

1. the command line;
2. ``IVIGMETA_<OPTION>`` environment variables (``IVIGMETA_TAU2=REML``,
   ``IVIGMETA_CC_POLICY=all``, ``IVIGMETA_COLUMNS=treat_events=EvT,...``; a repeatable option
   takes a comma-separated list);
3. the settings file: ``--config FILE`` (before the command: ``ivigmeta --config FILE pool``), else
   ``ivigmeta.toml`` in the working directory, else the ``[tool.ivigmeta]`` table of its
   ``pyproject.toml``;
4. ivigmeta's own defaults.

A settings file holds option names (``tau2 = "REML"``, ``measure = "OR"``,
``labels = ["Favours placebo", "Favours aspirin"]``, dashes or underscores alike) for every
command that has the option, and tables named after a command (``[batch]``) for that command
alone. An unknown name is an error naming the file; values are checked as the command line's.
``ivigmeta config`` shows the settings in force and where each came from.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import click

from ivigmeta.errors import DataError

FILE_NAME = "ivigmeta.toml"
ENV_PREFIX = "IVIGMETA_"
#: IVIGMETA_* variables that are not option defaults
ENV_RESERVED = frozenset({"IVIGMETA_DEBUG", "IVIGMETA_HYPOTHESIS"})
#: options that are never defaults from a file (each run names its own input and output)
NOT_SETTINGS = frozenset({"help", "version", "output", "out_dir", "plot", "config"})
#: commands that take no defaults at all: calculators without a study table, whose options
#: (transf's --tau2, a number) share names with the analyses' (--tau2 REML)
NO_SETTINGS_COMMANDS = frozenset({"transf"})


@dataclass(frozen=True)
class Setting:
    """One default in force: the option's long name, its value and where it came from."""

    name: str
    value: Any
    source: str


def key(name: str) -> str:
    """An option name as settings spell it: ``cc-policy``, ``cc_policy`` and ``--cc-policy``
    are all ``cc_policy``."""
    return name.strip().lstrip("-").replace("-", "_").lower()


def option_names(command: click.Command) -> dict[str, click.Option]:
    """The command's options by settings key (every long name of each option)."""
    out: dict[str, click.Option] = {}
    if command.name in NO_SETTINGS_COMMANDS:
        return out
    for param in command.params:
        if not isinstance(param, click.Option) or param.name in NOT_SETTINGS:
            continue
        for opt in param.opts + param.secondary_opts:
            if opt.startswith("--"):
                out.setdefault(key(opt), param)
    return out


def _toml(path: str) -> dict[str, Any]:
    import sys

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise DataError(f"{path}: not valid TOML ({exc})") from None


def load_file(explicit: str | None, cwd: str = ".") -> tuple[str, dict[str, Any]] | None:
    """``(where, table)`` of the settings file in force, or None."""
    if explicit:
        if not os.path.isfile(explicit):
            raise DataError(f"{explicit}: settings file not found (--config)")
        return explicit, _toml(explicit)
    own = os.path.join(cwd, FILE_NAME)
    if os.path.isfile(own):
        return FILE_NAME, _toml(own)
    project = os.path.join(cwd, "pyproject.toml")
    if os.path.isfile(project) and _mentions(project, "tool.ivigmeta"):
        table = _toml(project).get("tool", {}).get("ivigmeta")
        if isinstance(table, dict):
            return "pyproject.toml [tool.ivigmeta]", table
    return None


def _mentions(path: str, text: str) -> bool:
    """Whether the file has ``text`` at all (a pyproject.toml without ivigmeta's table is not
    parsed: the TOML reader costs start-up time)."""
    try:
        with open(path, "rb") as handle:
            return text.encode() in handle.read()
    except OSError:
        return False


def check_file(where: str, table: Mapping[str, Any], commands: Mapping[str, click.Command]) -> None:
    """Every name in the settings file is an option of some command, or a command's table of
    its options: else a DataError naming the file and the name."""
    every = {k for cmd in commands.values() for k in option_names(cmd)}
    for name, value in table.items():
        if isinstance(value, dict):
            if name not in commands:
                raise DataError(
                    f"{where}: [{name}] is not a command (tables are named after a command: "
                    f"{', '.join(sorted(commands))})"
                )
            if name in NO_SETTINGS_COMMANDS:
                raise DataError(f"{where}: [{name}]: 'ivigmeta {name}' takes no settings")
            known = option_names(commands[name])
            for sub in value:
                if key(sub) not in known:
                    raise DataError(
                        f"{where}: [{name}] {sub}: not an option of '{name}'{_suggest(sub, known)}"
                    )
        elif key(name) not in every:
            raise DataError(f"{where}: '{name}' is not an ivigmeta option{_suggest(name, every)}")


def _suggest(name: str, known: Iterable[str]) -> str:
    import difflib

    close = difflib.get_close_matches(key(name), sorted(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _file_value(option: click.Option, value: Any) -> Any:
    if option.multiple:
        return list(value) if isinstance(value, (list, tuple)) else [value]
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)  # labels = ["LEFT", "RIGHT"]
    return value


def _env_value(option: click.Option, text: str) -> Any:
    if option.multiple:
        return [v.strip() for v in text.split(",") if v.strip()]
    if option.is_flag:
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off", ""):
            return False
        raise DataError(f"{ENV_PREFIX}{key(option.opts[0]).upper()}: '{text}' is not true or false")
    return text


def check_values(ctx: click.Context, command: click.Command, found: Mapping[str, Setting]) -> None:
    """Each default converts as the command line's value would: else a DataError naming where
    it came from."""
    params = {p.name: p for p in command.params}
    for pname, setting in found.items():
        param = params[pname]
        try:
            param.type_cast_value(ctx, setting.value)
        except click.BadParameter as exc:
            raise DataError(
                f"{setting.source}: {setting.name} = {setting.value!r}: {exc.message}"
            ) from None


def in_force(
    ctx: click.Context, name: str, command: click.Command, config_file: str | None
) -> tuple[str | None, dict[str, Setting]]:
    """``(the settings file in force or None, the defaults command name gets)``, every name and
    value checked (DataError naming its source otherwise); ``ctx`` is any context of the run."""
    file = load_file(config_file)
    if file is not None:
        check_file(file[0], file[1], ctx.find_root().command.commands)  # type: ignore[attr-defined]
    found = settings(name, command, file)
    check_values(ctx, command, found)
    return (file[0] if file else None), found


def settings(
    name: str,
    command: click.Command,
    file: tuple[str, Mapping[str, Any]] | None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Setting]:
    """The defaults ``command`` (called ``name``) gets from the environment and the settings
    file, by parameter name."""
    environ = os.environ if environ is None else environ
    known = option_names(command)
    found: dict[str, Setting] = {}
    if file is not None:
        where, table = file
        for section, entries in (("", table), (name, table.get(name))):
            if not isinstance(entries, dict):
                continue
            for raw, value in entries.items():
                option = known.get(key(raw))
                if option is None or isinstance(value, dict) or option.name is None:
                    continue
                source = f"{where} [{section}]" if section else where
                found[option.name] = Setting(key(raw), _file_value(option, value), source)
    for var, text in environ.items():
        if not var.startswith(ENV_PREFIX) or var in ENV_RESERVED:
            continue
        option = known.get(key(var[len(ENV_PREFIX) :]))
        if option is None or option.name is None:
            continue
        found[option.name] = Setting(key(var[len(ENV_PREFIX) :]), _env_value(option, text), var)
    return found


@click.command("config")
@click.argument("command_name", metavar="[COMMAND]", required=False, default="pool")
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(("text", "json")),
    default="text",
    show_default=True,
    help="Output format.",
)
@click.pass_context
def config(ctx: click.Context, command_name: str, fmt: str) -> None:
    """Show the option defaults in force for COMMAND (default: pool) and where each comes from:
    an IVIGMETA_* environment variable, the settings file (--config FILE, ./ivigmeta.toml or
    [tool.ivigmeta] in ./pyproject.toml), or ivigmeta's own default."""
    import json

    root = ctx.find_root()
    group = root.command
    command = group.get_command(root, command_name)  # type: ignore[attr-defined]
    if command is None:
        raise click.UsageError(
            f"no command '{command_name}' (commands: {', '.join(group.list_commands(root))})"  # type: ignore[attr-defined]
        )
    if command_name in NO_SETTINGS_COMMANDS:
        message = (
            f"'ivigmeta {command_name}' takes no settings: its options come from the command line"
        )
        if fmt == "json":
            click.echo(json.dumps({"command": command_name, "settings_file": None, "settings": []}))
        else:
            click.echo(message)
        return
    try:
        where, found = in_force(ctx, command_name, command, root.params.get("config_file"))
    except DataError as exc:
        click.echo(f"Error: {exc}", err=True)
        ctx.exit(1)
    rows = []
    seen = set()
    for param in command.params:
        if not isinstance(param, click.Option) or param.name in NOT_SETTINGS:
            continue
        if param.name in seen or param.hidden:
            continue
        seen.add(param.name)
        name = key(next(o for o in param.opts if o.startswith("--")))
        if param.name in found:
            value, source = found[param.name].value, found[param.name].source
        else:
            value, source = param.default, "default"
            if type(value).__name__ == "Sentinel":  # click's "no default" marker
                value = False if param.is_flag else None
        rows.append({"option": name, "value": value, "source": source})
    if fmt == "json":
        payload = {
            "command": command_name,
            "settings_file": where,
            "settings": rows,
        }
        click.echo(json.dumps(payload, indent=2, default=str))
        return
    click.echo(f"settings for 'ivigmeta {command_name}' (settings file: {where or 'none'})")
    width = max(len(r["option"]) for r in rows)
    for r in rows:
        shown = "" if r["value"] is None else r["value"]
        if isinstance(shown, (list, tuple)):
            shown = ",".join(map(str, shown))
        click.echo(f"  {r['option']:<{width}}  {shown!s:<24}  {r['source']}")
