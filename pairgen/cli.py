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


def _run_build(recipe, **options):
    from .api import build as run_build
    from .executors import ShardFailed

    try:
        result = run_build(recipe, **options)
    except ShardFailed as exc:
        click.echo(f"pairgen: error: {exc}", err=True)
        sys.exit(1)
    click.echo(os.path.join(result.out, "dataset.json"))


def _render_options(command):
    """The options every rendering command shares."""
    options = [
        click.option("--frames", help="Frames A-B to render (default: the .blend's own range; procedural: the recipe's)."),
        click.option("--step", type=int, callback=_positive, help="Pairs (t, t+K) for flow; the frame stride for depth (default 1)."),
        click.option("--resolution", help="WxH in pixels (default: the .blend's own; procedural: the recipe's)."),
        click.option("--samples", "samples", type=int, callback=_positive, help="Cycles RGB samples per pixel (default 4, denoised)."),
        click.option("--normals/--no-normals", default=None, help="Depth: also write camera-space normals (normal.npy)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _checked_render_options(**options):
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


@main.command()
@click.argument("recipe")
@click.option("--src", "src", multiple=True, help="Input photos: a directory (recursive), a glob, a text file listing paths, or a .tar. Repeatable. Default: the photos embedded in scikit-image.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder for shards and dataset.json.")
@click.option("--seed", default=0, show_default=True, type=int, help="Run seed; same seed, same bytes.")
@click.option("--workers", type=int, callback=_positive, help="Worker processes (default: all cores).")
@click.option("--shard-size", type=int, callback=_positive, help="Samples per shard (default 256; rendered recipes 32). Shards are the unit of parallel work.")
@click.option("--crop", type=click.IntRange(min=0), help="HR crop side in pixels, a multiple of the scale (default 256, or 255 at x3); smaller images are skipped; 0 keeps the whole image trimmed to a multiple of the scale.")
@click.option("--crops-per-image", default=1, show_default=True, type=int, callback=_positive, help="Random crops taken from each image.")
@click.option("--scale", type=click.Choice(["2", "3", "4", "8"]), help="Super-resolution factor (default: the recipe's).")
@click.option("--limit", type=int, callback=_positive, help="Stop after N samples.")
@click.option("--format", "fmt", default="wds", show_default=True, type=click.Choice(["wds", "hdf5"]), help="Shard format.")
@click.option("--overwrite", is_flag=True, help="Delete an earlier build in --out and start over (default: resume it).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a recipe parameter, e.g. --set degrade.0.p=0.5 or --set scale=2. Repeatable.")
@click.option("--executor", default="local", show_default=True, type=click.Choice(["local", "ray"]), help="Run shards in local processes or on Ray.")
@click.option("--ray-address", help="Connect to this Ray cluster instead of starting a local one.")
@click.option("--max-pixels", type=int, callback=_positive, help="Refuse images with more pixels than this (decompression bombs); default 100 million.")
@click.option("--scenes", type=int, callback=_positive, help="Rendered recipes (flow, depth): number of procedural scenes (default 100).")
@_render_options
@click.option("--quiet", is_flag=True, help="No progress bar (the plan and the summary are still printed).")
def build(recipe, src, out, seed, workers, shard_size, crop, crops_per_image, scale, limit, fmt, overwrite, overrides,
          executor, ray_address, max_pixels, scenes, quiet, **render):
    """Build training shards from RECIPE (a built-in name or a YAML file)."""
    _run_build(recipe, src=list(src), out=out, seed=seed, workers=workers, shard_size=shard_size, crop=crop,
               crops_per_image=crops_per_image, scale=int(scale) if scale else None, limit=limit, format=fmt,
               overwrite=overwrite, overrides=list(overrides), executor=executor, ray_address=ray_address,
               max_pixels=max_pixels, progress=not quiet, **_checked_render_options(scenes=scenes, **render))


def _render_command(kind: str):
    @click.argument("blend", type=click.Path(dir_okay=False))
    @click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder for shards and dataset.json.")
    @click.option("--seed", default=0, show_default=True, type=int, help="Run seed (Cycles noise per frame derives from it).")
    @click.option("--workers", type=int, callback=_positive, help="Worker processes, each with its own Blender (default: all cores).")
    @click.option("--shard-size", type=int, callback=_positive, help="Samples per shard (default 32).")
    @click.option("--limit", type=int, callback=_positive, help="Stop after N samples.")
    @click.option("--format", "fmt", default="wds", show_default=True, type=click.Choice(["wds", "hdf5"]), help="Shard format.")
    @click.option("--overwrite", is_flag=True, help="Delete an earlier build in --out and start over (default: resume it).")
    @_render_options
    @click.option("--quiet", is_flag=True, help="No progress bar.")
    def command(blend, out, seed, workers, shard_size, limit, fmt, overwrite, quiet, **render):
        _run_build(kind, out=out, seed=seed, workers=workers, shard_size=shard_size, limit=limit, format=fmt,
                   overwrite=overwrite, progress=not quiet, **_checked_render_options(blend=blend, **render))

    return command


main.command("render-flow", help="Render optical flow ground truth for every frame pair (t, t+K) of BLEND: "
             "frames, flow both ways, occlusion, planar depth, instance ids, cameras and keypoints. "
             "The file's scripts never run.")(_render_command("flow"))
main.command("render-depth", help="Render planar depth, instance ids (and normals with --normals) for every "
             "frame of BLEND. The file's scripts never run.")(_render_command("depth"))


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
