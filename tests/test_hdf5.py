"""HDF5 shards that other HDF5 clients read: Debian's h5dump (installed by `make test`) reads a field."""
import json
import re
import shutil
import subprocess

import h5py
import numpy as np
import pytest

from conftest import run_cli


@pytest.mark.parametrize("fmt, filter_", [("hdf5", "gzip"), ("hdf5-lzf", "lzf")])
def test_hdf5_filters_and_the_card(tmp_path, fmt, filter_):
    out = tmp_path / "out"
    result = run_cli("build", "superres-bicubic", "--crop", "64", "--limit", "3", "--format", fmt, "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    card = json.load(open(out / "dataset.json"))
    assert card["format"] == fmt and card["hdf5_filter"]["compression"] == filter_
    with h5py.File(next(out.glob("*.h5"))) as handle:
        dataset = handle["000000000"]["lr.png"]
        assert dataset.compression == filter_


def test_h5dump_reads_a_field_of_the_default_hdf5_shards(tmp_path):
    h5dump = shutil.which("h5dump")
    assert h5dump, "h5dump is missing: `make test` installs Debian's hdf5-tools (apt-get install hdf5-tools)"
    out = tmp_path / "out"
    assert run_cli("build", "superres-bicubic", "--crop", "64", "--limit", "2", "--format", "hdf5", "--out", out).returncode == 0
    shard = next(out.glob("*.h5"))
    dump = subprocess.run([h5dump, "-d", "/000000001/lr.png", "-s", "0,0,0", "-c", "2,2,3", str(shard)],
                          capture_output=True, text=True, timeout=60)
    assert dump.returncode == 0, dump.stderr
    with h5py.File(shard) as handle:
        expected = handle["000000001"]["lr.png"][0:2, 0:2, :]
    # h5dump prints "(row,col,channel): v, v, v" lines; the numbers after each colon are the values
    data_block = dump.stdout.split("DATA {", 1)[1].split("}", 1)[0]
    printed = [int(v) for line in data_block.splitlines() if ":" in line for v in re.findall(r"\d+", line.split(":", 1)[1])]
    assert np.array_equal(np.array(printed, np.uint8).reshape(2, 2, 3), expected)
