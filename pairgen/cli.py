"""The `pairgen` command: parse options, call the API, print. Nothing else lives here."""
from __future__ import annotations

import os
import sys

import click

from . import __version__
from .errors import PairgenError, RecipeError, UsageError


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


@main.command()
@click.argument("recipe")
@click.option("--src", "src", multiple=True, help="Input photos: a directory (recursive), a glob, a text file listing paths, or a .tar. Repeatable. Default: the photos embedded in scikit-image.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder for shards and dataset.json.")
@click.option("--seed", default=0, show_default=True, type=int, help="Run seed; same seed, same bytes.")
@click.option("--workers", type=int, callback=_positive, help="Worker processes (default: all cores).")
@click.option("--shard-size", default=256, show_default=True, type=int, callback=_positive, help="Samples per shard.")
@click.option("--crop", default=256, show_default=True, type=click.IntRange(min=0), help="HR crop side in pixels; smaller images are skipped; 0 keeps the whole image trimmed to a multiple of the scale.")
@click.option("--crops-per-image", default=1, show_default=True, type=int, callback=_positive, help="Random crops taken from each image.")
@click.option("--scale", type=click.Choice(["2", "3", "4", "8"]), help="Super-resolution factor (default: the recipe's).")
@click.option("--limit", type=int, callback=_positive, help="Stop after N samples.")
@click.option("--format", "fmt", default="wds", show_default=True, type=click.Choice(["wds", "hdf5"]), help="Shard format.")
@click.option("--overwrite", is_flag=True, help="Delete an earlier build in --out and start over (default: resume it).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a recipe parameter, e.g. --set degrade.0.p=0.5 or --set scale=2. Repeatable.")
@click.option("--executor", default="local", show_default=True, type=click.Choice(["local", "ray"]), help="Run shards in local processes or on Ray.")
@click.option("--ray-address", help="Connect to this Ray cluster instead of starting a local one.")
@click.option("--max-pixels", type=int, callback=_positive, help="Refuse images with more pixels than this (decompression bombs); default 100 million.")
@click.option("--scenes", type=int, callback=_positive, help="Rendered recipes (flow, depth): number of procedural scenes.")
@click.option("--resolution", help="Rendered recipes: WxH in pixels.")
@click.option("--samples", "render_samples", type=int, callback=_positive, help="Rendered recipes: Cycles samples per pixel.")
@click.option("--quiet", is_flag=True, help="No progress bar (the plan and the summary are still printed).")
def build(recipe, src, out, seed, workers, shard_size, crop, crops_per_image, scale, limit, fmt, overwrite, overrides,
          executor, ray_address, max_pixels, scenes, resolution, render_samples, quiet):
    """Build training shards from RECIPE (a built-in name or a YAML file)."""
    from .api import build as run_build
    from .executors import ShardFailed

    render = _render_options(scenes=scenes, resolution=resolution, samples=render_samples)
    try:
        result = run_build(recipe, src=list(src), out=out, seed=seed, workers=workers, shard_size=shard_size, crop=crop,
                           crops_per_image=crops_per_image, scale=int(scale) if scale else None, limit=limit, format=fmt,
                           overwrite=overwrite, overrides=list(overrides), executor=executor, ray_address=ray_address,
                           max_pixels=max_pixels, progress=not quiet, **render)
    except ShardFailed as exc:
        click.echo(f"pairgen: error: {exc}", err=True)
        sys.exit(1)
    click.echo(os.path.join(result.out, "dataset.json"))


def _render_options(**options):
    out = {k: v for k, v in options.items() if v is not None}
    if "resolution" in out:
        try:
            w, h = (int(v) for v in out["resolution"].lower().split("x"))
            if w < 1 or h < 1:
                raise ValueError
        except ValueError:
            raise UsageError(f"--resolution must look like 256x256 (width x height in pixels), got {out['resolution']!r}") from None
        out["resolution"] = (w, h)
    return out


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
def inspect(folder, n_samples):
    """Summarise a shard folder and write previews into FOLDER/preview/."""
    from .inspection import inspect as run_inspect

    report = run_inspect(folder, n_samples=n_samples)
    click.echo(report.text)


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
