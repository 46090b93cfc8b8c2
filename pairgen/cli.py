"""The `pairgen` command: parse options, call the API, print. Nothing else lives here."""
from __future__ import annotations

import os
import sys

import click

from . import __version__
from .errors import Interrupted, PairgenError, RecipeError, UsageError
from .tasks import registered_tasks


class _Group(click.Group):
    """Turn pairgen's errors into a message and an exit status instead of a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (UsageError, RecipeError) as exc:
            click.echo(f"pairgen: error: {exc}", err=True)
            ctx.exit(2)
        except Interrupted as exc:
            from .api import exit_at_next_interrupt

            exit_at_next_interrupt()
            click.echo(f"pairgen: {exc}", err=True)
            # The workers are gone and the folder is consistent: end now rather than let the
            # interpreter's exit wait on the process pool's threads.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)
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
    import faulthandler
    import signal

    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1 PID`: where is it stuck?


STORAGE_OPTIONS_HELP = ("fsspec options for s3:// / gs:// paths as JSON, e.g. '{\"endpoint_url\": \"http://host:9000\"}' "
                        "(default: $PAIRGEN_STORAGE_OPTIONS; credentials also from AWS_* variables).")


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
    from .storage import is_remote, join

    click.echo(join(result.out, "dataset.json") if is_remote(result.out) else os.path.join(result.out, "dataset.json"))


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
        click.option("--format", "fmt", default="wds", show_default=True, type=click.Choice(["wds", "hdf5", "hdf5-lzf"]),
                     help="Shard format: webdataset tars, HDF5 with gzip (every HDF5 reader), or HDF5 with LZF (h5py only; faster)."),
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


def _recipes_epilog() -> str:
    from .recipes import builtin_recipes

    return "Built-in recipes: " + ", ".join(builtin_recipes()) + " (`pairgen recipes` describes them)."


@main.command(epilog=_recipes_epilog())
@click.argument("recipe")
@click.option("--src", "src", multiple=True, help="Input photos: a directory (recursive), a glob, a text file listing paths, or a .tar. Repeatable. Default: the photos embedded in scikit-image.")
@_run_options
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a recipe parameter, e.g. --set degrade.0.p=0.5 or --set scale=2. Repeatable.")
@click.option("--executor", default="local", show_default=True, type=click.Choice(["local", "ray"]), help="Run shards in local processes or on Ray.")
@click.option("--ray-address", help="Join this Ray cluster (HOST:PORT, as `ray start --head` prints) instead of starting a local one.")
@click.option("--retries", default=2, show_default=True, type=click.IntRange(0, 100),
              help="Attempts after the first for a shard that fails (an error, a worker that died); each is reported.")
@click.option("--max-pixels", type=int, callback=_positive, help="Refuse images with more pixels than this (decompression bombs); default 100 million.")
@click.option("--storage-options", metavar="JSON", help=STORAGE_OPTIONS_HELP)
@_with_task_flags_of_all_tasks
def build(recipe, src, out, seed, workers, shard_size, limit, fmt, overwrite, quiet, overrides, executor, ray_address,
          retries, max_pixels, storage_options, **task_options):
    """Build training shards from RECIPE (a built-in name or a YAML file; `pairgen recipes` lists
    them). Task options apply to the tasks named in brackets; another task's option is an error."""
    _run_build(recipe, src=list(src), out=out, seed=seed, workers=workers, shard_size=shard_size, limit=limit,
               format=fmt, overwrite=overwrite, overrides=list(overrides), executor=executor, ray_address=ray_address,
               retries=retries, max_pixels=max_pixels, progress=not quiet, storage_options=storage_options, **_given(task_options))


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
              help="Comma-separated formats: flo (Middlebury), kitti (16-bit flow PNG), pfm (flow and depth), "
                   "blenderproc (BlenderProc's per-frame HDF5 files, OUT/<scene>/<index>.hdf5).")
def export(folder, out, formats):
    """Export the flow and depth fields of FOLDER's samples to the formats existing training code reads."""
    from .inspection import export_folder

    chosen = tuple(f.strip() for f in formats.split(",") if f.strip())
    summary = export_folder(folder, out, chosen)
    click.echo(f"exported {summary['samples']} samples ({summary['files']} files) to {out}/")
    kitti = summary["kitti_invalid_for_range"]
    if kitti:
        click.echo(f"KITTI: {kitti['pixels']} pixels stored invalid (B = 0) because their flow exceeds the format's "
                   f"range (about +-512 px), in {sum(1 for n in kitti['per_file'].values() if n)} of "
                   f"{len(kitti['per_file'])} files")
        for name, n in kitti["per_file"].items():
            if n:
                click.echo(f"  {name}: {n} pixels")
    click.echo(f"summary: {os.path.join(out, 'export_summary.json')}")


@main.command("example-photos")
@click.argument("folder", type=click.Path(file_okay=False))
def example_photos(folder):
    """Write the photos embedded in scikit-image into FOLDER as JPEGs (an example --src)."""
    from .examples import write_example_photos

    paths = write_example_photos(folder)
    click.echo(f"wrote {len(paths)} example photos to {folder.rstrip('/')}/")


@main.command("example-scene")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--frames", default=12, show_default=True, type=int, callback=_positive, help="Animation frames.")
def example_scene(path, frames):
    """Make a small animated .blend scene at PATH (an example for render-flow / render-depth)."""
    from .examples import write_example_scene

    click.echo(f"wrote {write_example_scene(path, frames)} ({frames} frames)")


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
@click.option("--preview-dir", type=click.Path(file_okay=False),
              help="Write the previews here (default: FOLDER/preview/, or a cache folder when FOLDER is read-only).")
@click.option("--html", "html", type=click.Path(file_okay=False),
              help="Also write a static report site here (open DIR/index.html from disk): gallery, zoom, histograms, filters.")
@click.option("--page-size", type=int, callback=_positive, help="Samples per page of the --html gallery (default 24).")
def inspect(folder, n_samples, preview_dir, html, page_size):
    """Summarise a shard folder and write previews into FOLDER/preview/ (and, with --html, a report
    site). Exits 1 when a shard is damaged (named with the last good key; the rest is still read)."""
    from .inspection import inspect as run_inspect

    if page_size is not None and html is None:
        raise UsageError("--page-size sets the pages of the --html report; give --html DIR too")
    site = None
    if html is not None:  # first: a folder it refuses is refused before any other work
        from .report import DEFAULT_PAGE_SIZE, write_report

        site = write_report(folder, html, page_size=page_size or DEFAULT_PAGE_SIZE, progress=sys.stderr.isatty())
    report = run_inspect(folder, n_samples=n_samples, preview_dir=preview_dir)
    click.echo(report.text)
    if site is not None:
        click.echo(site.text())
    sys.exit(1 if report.problems else 0)


@main.command()
@click.argument("folder", type=click.Path())
@click.option("--repair", is_flag=True, help="Rebuild the damaged shards bit-exactly with the build's recorded command.")
@click.option("--quiet", is_flag=True, help="No progress bar while repairing.")
@click.option("--storage-options", metavar="JSON", help=STORAGE_OPTIONS_HELP)
def verify(folder, repair, quiet, storage_options):
    """Check every shard of FOLDER (a folder or an s3:// prefix) against the size and sha256
    recorded when it was written; exit 1 listing the damaged ones (--repair rebuilds them)."""
    from . import storage
    from .verification import repair as run_repair, verify as run_verify

    storage.configure(storage.parse_options(storage_options))
    folder = storage.local_form(folder)

    before, after = run_repair(folder, progress=not quiet) if repair else (run_verify(folder),) * 2
    for name, reason in sorted(before.bad.items()):
        click.echo(f"{folder.rstrip('/')}/{name}: {reason}")
    if repair and not before.ok:
        fixed = sorted(set(before.bad) - set(after.bad))
        click.echo(f"repaired {len(fixed)} of {len(before.bad)} damaged shards (byte-identical rebuilds)")
        for name, reason in sorted(after.bad.items()):
            click.echo(f"{folder.rstrip('/')}/{name}: still bad: {reason}")
    verdict = after
    click.echo(f"{folder}: {verdict.checked} shards checked, {len(verdict.bad)} damaged"
               + ("" if verdict.ok or repair else "; run `pairgen verify --repair` to rebuild them"))
    sys.exit(0 if verdict.ok else 1)


@main.command()
@click.option("--real", "real", required=True, type=click.Path(), help="Folder of your real low-quality photos to match.")
@click.option("--recipe", required=True, help="The recipe to fit (a built-in name or a YAML file): superres (low-quality photos) or colorize (scans of old prints).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The calibrated recipe YAML to write.")
@click.option("--src", "src", multiple=True, help="Clean photos to simulate the recipe on (default: the embedded photos).")
@click.option("--samples", default=None, type=int,
              help="Simulated outputs per candidate setting (default: 24 for superres, 48 for colorize).")
@click.option("--lr-size", "lr_size", default=None, type=int,
              help="Side of the simulated outputs, pixels (default: 64 for superres LR, 128 for colorize prints).")
@click.option("--workers", default=1, show_default=True, type=int, callback=_positive, help="Processes measuring the real images.")
@click.option("--passes", default=2, show_default=True, type=int, callback=_positive, help="Rounds of the coordinate search.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the simulated crops and draws.")
@click.option("--report", type=click.Path(dir_okay=False),
              help="Report path without extension (default: OUT minus .yaml plus .report): writes .png and .json.")
def calibrate(real, recipe, out, src, samples, lr_size, workers, passes, seed, report):
    """Fit RECIPE's sampling settings so its outputs' statistics (superres: JPEG quality, noise,
    blur; colorize: tone, tint, grain, fading) match the real images in --real; write the
    calibrated recipe to --out and a report."""
    from .calibration import calibrate as run_calibrate

    result = run_calibrate(real, recipe, out, src=list(src), samples=samples, lr_side=lr_size, seed=seed, passes=passes,
                           report=report, log=lambda line: click.echo(line, err=True), workers=workers)
    for path, reason in result.skipped:
        click.echo(f"skipped {path}: {reason}", err=True)
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(f"{result.real_count} real images; Wasserstein distance to the held-out half, default -> calibrated "
               "(sampling noise: differences below it are luck):")
    for name in result.distances_default:
        click.echo(f"  {name:<26} {result.distances_default[name]:8.3f} -> {result.distances_calibrated[name]:8.3f}"
                   f"   ({result.sampling_noise[name]:.3f})")
    click.echo(result.recipe_path)
    click.echo(result.report_png)
    click.echo(result.report_json)


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
