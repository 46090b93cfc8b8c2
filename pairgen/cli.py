"""The `pairgen` command: parse options, call the API, print. Nothing else lives here."""
from __future__ import annotations

import os
import sys

import click

from . import __version__
from .errors import PairgenError, RecipeError, UsageError
from .tasks import registered_tasks


class _Group(click.Group):
    """Turn pairgen's errors into a message and an exit status instead of a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (UsageError, RecipeError) as exc:
            click.echo(f"pairgen: error: {exc}", err=True)
            ctx.exit(2)
        except PairgenError as exc:
            click.echo(f"pairgen: error: {exc}", err=True)
            ctx.exit(1)
        except click.UsageError as exc:
            if "unexpected extra argument" in exc.message:
                exc.message += ("; an unquoted glob in --src expands to many arguments: quote it "
                                "(--src 'photos/*.jpg') or pass the folder")
            raise
        except KeyboardInterrupt:
            click.echo("pairgen: interrupted; run the same command again to resume", err=True)
            ctx.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pairgen")
def main():
    """pairgen: paired training data for image-to-image learning, written as shards."""


def _positive(ctx, param, value):
    if value is not None and value < 1:
        raise click.BadParameter("must be at least 1")
    return value


def _run_build(recipe, **options):
    from .api import build as run_build
    from .executors import ShardFailed

    try:
        result = run_build(recipe, **options)
    except ShardFailed as exc:
        click.echo(f"pairgen: error: {exc}", err=True)
        sys.exit(1)
    click.echo(os.path.join(result.out, "dataset.json"))


# ----------------------------------------------------------------------------- task options as flags


def _task_option_fields() -> dict:
    """Every registered task's option fields: name -> (dataclass field, names of the tasks that
    have it). One flag serves every task that has an option of that name (same type)."""
    import dataclasses

    found: dict = {}
    for task_name, task_class in registered_tasks().items():
        for f in dataclasses.fields(task_class.Options):
            if f.name in found and found[f.name][0].metadata["type"] is not f.metadata["type"]:
                raise TypeError(f"option {f.name!r} has two types ({found[f.name][1][0]} and {task_name})")
            found.setdefault(f.name, (f, []))[1].append(task_name)
    return found


def _flag(f, task_names: list[str], help_prefix: bool = True):
    from .tasks.base import option_flag

    meta = f.metadata
    help_text = meta["help"] + (f" [{', '.join(task_names)}]" if help_prefix else "")
    flag = option_flag(f)
    if meta["type"] is bool:
        return click.option(f"{flag}/--no-{flag[2:]}", f.name, default=None, help=help_text)
    kind = click.Choice([str(c) for c in meta["choices"]]) if meta["choices"] else meta["type"]
    convert = meta["type"] if meta["choices"] else None
    callback = (lambda ctx, param, value: None if value is None else convert(value)) if convert else None
    return click.option(flag, f.name, type=kind, default=None, callback=callback, help=help_text)


def _with_task_flags(command, fields: dict, skip=(), help_prefix: bool = True):
    for name, (f, task_names) in reversed(list(fields.items())):
        if name not in skip:
            command = _flag(f, task_names, help_prefix)(command)
    return command


def _run_options(command, render: bool = False):
    """The options of every build: where, how many, in what format."""
    options = [
        click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder for shards and dataset.json."),
        click.option("--seed", default=0, show_default=True, type=int, help="Run seed; same seed, same bytes."),
        click.option("--workers", type=int, callback=_positive, help="Worker processes (default: all cores)."),
        click.option("--shard-size", type=int, callback=_positive,
                     help="Samples per shard (default: the task's, 256 for photo tasks, 32 for rendered ones). Shards are the unit of parallel work."),
        click.option("--limit", type=int, callback=_positive, help="Stop after N samples."),
        click.option("--format", "fmt", default="wds", show_default=True, type=click.Choice(["wds", "hdf5"]), help="Shard format."),
        click.option("--overwrite", is_flag=True, help="Delete an earlier build in --out and start over (default: resume it)."),
        click.option("--quiet", is_flag=True, help="No progress bar (the plan and the summary are still printed)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _with_task_flags_of_all_tasks(command):
    return _with_task_flags(command, _task_option_fields())


def _given(options: dict) -> dict:
    return {k: v for k, v in options.items() if v is not None}


@main.command()
@click.argument("recipe")
@click.option("--src", "src", multiple=True, help="Input photos: a directory (recursive), a glob, a text file listing paths, or a .tar. Repeatable. Default: the photos embedded in scikit-image.")
@_run_options
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a recipe parameter, e.g. --set degrade.0.p=0.5 or --set scale=2. Repeatable.")
@click.option("--executor", default="local", show_default=True, type=click.Choice(["local", "ray"]), help="Run shards in local processes or on Ray.")
@click.option("--ray-address", help="Connect to this Ray cluster instead of starting a local one.")
@click.option("--max-pixels", type=int, callback=_positive, help="Refuse images with more pixels than this (decompression bombs); default 100 million.")
@_with_task_flags_of_all_tasks
def build(recipe, src, out, seed, workers, shard_size, limit, fmt, overwrite, quiet, overrides, executor, ray_address,
          max_pixels, **task_options):
    """Build training shards from RECIPE (a built-in name or a YAML file; `pairgen recipes` lists
    them). Task options apply to the tasks named in brackets; another task's option is an error."""
    _run_build(recipe, src=list(src), out=out, seed=seed, workers=workers, shard_size=shard_size, limit=limit,
               format=fmt, overwrite=overwrite, overrides=list(overrides), executor=executor, ray_address=ray_address,
               max_pixels=max_pixels, progress=not quiet, **_given(task_options))


def _task_command(task_class):
    """A dedicated command of a task (e.g. render-flow BLEND): its argument, the run options and
    the task's other options."""
    import dataclasses

    _, argument, _ = task_class.command
    fields = {f.name: (f, [task_class.name]) for f in dataclasses.fields(task_class.Options)}

    def command(out, seed, workers, shard_size, limit, fmt, overwrite, quiet, **task_options):
        _run_build(task_class.name, out=out, seed=seed, workers=workers, shard_size=shard_size, limit=limit, format=fmt,
                   overwrite=overwrite, progress=not quiet, **_given(task_options))

    command = _with_task_flags(command, fields, skip={argument}, help_prefix=False)
    command = _run_options(command)
    return click.argument(argument, type=click.Path(dir_okay=False))(command)


for _task_class in registered_tasks().values():
    if _task_class.command:
        main.command(_task_class.command[0], help=_task_class.command[2])(_task_command(_task_class))


@main.command()
@click.argument("folder", type=click.Path())
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for the exported files.")
@click.option("--to", "formats", default="flo,kitti,pfm", show_default=True,
              help="Comma-separated formats: flo (Middlebury), kitti (16-bit flow PNG), pfm (flow and depth).")
def export(folder, out, formats):
    """Export the flow and depth fields of FOLDER's samples to the formats existing training code reads."""
    from .inspection import export_folder

    chosen = tuple(f.strip() for f in formats.split(",") if f.strip())
    count, files = export_folder(folder, out, chosen)
    click.echo(f"exported {count} samples ({files} files) to {out}/")


@main.command("recipes")
def list_recipes():
    """List the built-in recipes."""
    from .recipes import builtin_recipes, read_recipe

    for name, path in builtin_recipes().items():
        _, _, raw = read_recipe(path)
        description = str(raw.get("description", "")).strip().splitlines()
        click.echo(f"{name:<20} {raw.get('task', '?'):<9} {description[0] if description else ''}")


@main.command()
@click.argument("folder", type=click.Path())
@click.option("--samples", "n_samples", default=8, show_default=True, type=int, callback=_positive, help="Samples in the contact sheet.")
@click.option("--html", "html", type=click.Path(file_okay=False),
              help="Also write a static report site here (open DIR/index.html from disk): gallery, zoom, histograms, filters.")
@click.option("--page-size", type=int, callback=_positive, help="Samples per page of the --html gallery (default 24).")
def inspect(folder, n_samples, html, page_size):
    """Summarise a shard folder and write previews into FOLDER/preview/ (and, with --html, a report site)."""
    from .inspection import inspect as run_inspect

    if page_size is not None and html is None:
        raise UsageError("--page-size sets the pages of the --html report; give --html DIR too")
    site = None
    if html is not None:  # first: a folder it refuses is refused before any other work
        from .report import DEFAULT_PAGE_SIZE, write_report

        site = write_report(folder, html, page_size=page_size or DEFAULT_PAGE_SIZE, progress=sys.stderr.isatty())
    click.echo(run_inspect(folder, n_samples=n_samples).text)
    if site is not None:
        click.echo(site.text())


@main.command()
@click.argument("folder", type=click.Path())
@click.argument("key")
@click.option("--out", type=click.Path(file_okay=False), help="Write the regenerated fields here.")
def replay(folder, key, out):
    """Regenerate sample KEY of FOLDER from its json record and check it bit-exactly."""
    from .inspection import replay_key

    ok, text = replay_key(folder, key, out)
    click.echo(text)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
