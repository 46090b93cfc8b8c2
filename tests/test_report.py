"""`pairgen inspect --html`: the report's files, read back independently (webdataset for the
shards, OpenCV for the pictures), its resume, its refusals, a damaged shard, every built-in recipe
through the task registry, and the page itself in a real headless Chromium (Debian's package,
installed by `make browser`, which `make test` runs)."""
import json
import os
import shutil
import tarfile
import tempfile
import time

import cv2
import numpy as np
import pytest
import webdataset as wds

from pairgen.api import build
from pairgen.preview import VIEWS, field_to_rgb
from pairgen.recipes import builtin_recipes
from pairgen.report import THUMB_BOX, write_report

from conftest import run_cli
from test_tasks import decode, tiny_options

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
INSTALL = ("run `make browser` (as root: apt-get install -y --no-install-recommends chromium chromium-driver) "
           "and `pip install -e '.[test]'` for selenium")
PAGE = 8


# ------------------------------------------------------------------------------------ datasets


@pytest.fixture(scope="module")
def superres(tmp_path_factory):
    out = tmp_path_factory.mktemp("sr") / "shards"
    build("superres", out=str(out), limit=20, shard_size=6, workers=1, progress=False, crop=64, crops_per_image=2)
    return out


@pytest.fixture(scope="module")
def edges(tmp_path_factory):
    out = tmp_path_factory.mktemp("edges") / "shards"
    build("edges", out=str(out), limit=12, shard_size=8, workers=1, progress=False, crop=64, crops_per_image=2)
    return out


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    out = tmp_path_factory.mktemp("flow") / "shards"
    build("flow", out=str(out), shard_size=2, workers=1, progress=False, resolution="32x32", scenes=3, samples=1)
    return out


def read_back(folder):
    card = json.loads((folder / "dataset.json").read_text())
    urls = [str(folder / row["file"]) for row in card["shards"]]
    samples = [{k: decode(k, v) if not k.startswith("__") else v for k, v in s.items()}
               for s in wds.WebDataset(urls, shardshuffle=False)]
    return card, samples


def page_data(report, page):
    lines = (report / "data" / "pages" / f"p{page:06d}.js").read_text().split("\n")
    assert lines[1] == "pairgenPage(" and lines[3] == ");"
    return json.loads(lines[2])


def report_data(report):
    text = (report / "data" / "report.js").read_text()
    prefix = "window.PAIRGEN_REPORT = "
    assert text.startswith(prefix)
    return json.loads(text[len(prefix):].rstrip().rstrip(";"))


def column(report, param):
    text = (report / param["column"]).read_text()
    assert text.startswith(f"pairgenColumn({param['index']},")
    return json.loads(text[text.index(",") + 1:text.rindex(")")])


def image(path):
    picture = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert picture is not None, path
    return picture[:, :, ::-1]


def all_files(folder):
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


# ------------------------------------------------------------------------------------ the files


def test_pages_hold_every_sample_through_its_fields_views(superres, tmp_path):
    report = tmp_path / "report"
    result = write_report(str(superres), str(report), page_size=PAGE)
    card, samples = read_back(superres)
    assert (result.samples, result.pages, result.pages_written) == (20, 3, 3)
    entries = [e for p in (1, 2, 3) for e in page_data(report, p)["samples"]]
    assert [len(page_data(report, p)["samples"]) for p in (1, 2, 3)] == [8, 8, 4]
    assert [e["i"] for e in entries] == list(range(20))
    for entry, sample in zip(entries, samples):
        assert entry["key"] == sample["__key__"] and entry["record"] == sample["json"]
        tiles = {t["field"]: t for t in entry["tiles"]}
        assert list(tiles) == ["lr.png", "hr.png"]  # inputs first, then targets
        full = image(report / entry["full"])
        thumb = image(report / entry["thumb"])
        assert thumb.shape == (THUMB_BOX, 2 * THUMB_BOX, 3)
        for name, tile in tiles.items():
            view = field_to_rgb(name, sample[name], card["fields"][name]["view"])
            cell = tile["cell"]
            assert (tile["w"], tile["h"]) == (view.shape[1], view.shape[0])
            assert np.array_equal(full[:tile["h"], cell["x"]:cell["x"] + tile["w"]], view)  # lossless zoom
        # the LR (16 px) is blown up with nearest neighbour to the HR's thumbnail size: 16 px blocks
        lr_thumb = thumb[:, :THUMB_BOX].astype(int)
        assert np.abs(lr_thumb[:16, :16] - lr_thumb[0, 0]).max() <= 12  # one LR pixel, JPEG noise aside
        ops = {op["label"]: op["params"] for op in sample["json"]["degrade_ops"]}
        assert entry["params"]["jpeg1.quality"] == ops["jpeg1"]["quality"]
        assert entry["params"]["blur1.kind"] == ops["blur1"]["kind"]
    assert not list(report.rglob("*.tmp"))


def test_histograms_and_columns_cover_every_sample(superres, tmp_path):
    report = tmp_path / "report"
    write_report(str(superres), str(report), page_size=PAGE)
    data = report_data(report)
    _, samples = read_back(superres)
    params = {p["name"]: p for p in data["params"]}
    assert {"jpeg1.quality", "blur1.sigma_x", "blur1.kind", "final.jpeg.quality"} <= set(params)
    for param in data["params"]:
        values = column(report, param)
        assert len(values) == 20 and param["n"] + param["missing"] == 20
        assert sum(param["counts"]) == param["n"] == sum(v is not None for v in values)
    quality = params["jpeg1.quality"]
    truth = [next(op["params"]["quality"] for op in s["json"]["degrade_ops"] if op["label"] == "jpeg1") for s in samples]
    assert column(report, quality) == truth and quality["kind"] == "number"
    assert (quality["min"], quality["max"]) == (min(truth), max(truth))
    kinds = params["blur1.kind"]
    codes = column(report, kinds)
    truth = [next(op["params"]["kind"] for op in s["json"]["degrade_ops"] if op["label"] == "blur1") for s in samples]
    assert [kinds["categories"][c] for c in codes] == truth
    assert dict(zip(kinds["categories"], kinds["counts"])) == {k: truth.count(k) for k in set(truth)}


def test_a_rerun_keeps_finished_pages_and_reads_no_shard(superres, tmp_path):
    report = tmp_path / "report"
    write_report(str(superres), str(report), page_size=PAGE)
    images = {p: t for p, t in all_files(report).items() if p.parent.parent.name == "img"}
    again = write_report(str(superres), str(report), page_size=PAGE)
    assert (again.pages_written, again.pages_reused, again.shards_read) == (0, 3, 0)
    assert {p: t for p, t in all_files(report).items() if p.parent.parent.name == "img"} == images
    # an interrupted run: page 2 never got its data file, one image was left half-written
    (report / "data" / "pages" / "p000002.js").unlink()
    stale = next((report / "img" / "p000002").glob("*.jpg"))
    stale.with_name(stale.name + ".tmp").write_bytes(b"half")
    resumed = write_report(str(superres), str(report), page_size=PAGE)
    assert (resumed.pages_written, resumed.pages_reused) == (1, 2)
    assert resumed.shards_read == 2  # samples 8..15 are in shards 1 (6..11) and 2 (12..17)
    assert not list(report.rglob("*.tmp"))
    assert len(page_data(report, 2)["samples"]) == 8
    for path, mtime in images.items():  # pages 1 and 3 were not touched
        if path.parent.name != "p000002":
            assert path.stat().st_mtime_ns == mtime


def test_another_dataset_or_page_size_writes_the_report_anew(superres, tmp_path):
    report = tmp_path / "report"
    write_report(str(superres), str(report), page_size=PAGE)
    result = write_report(str(superres), str(report), page_size=5)
    assert result.pages_written == 4 and "written anew" in result.note
    assert not (report / "data" / "pages" / "p000005.js").exists()
    other = tmp_path / "other"
    build("superres", out=str(other), limit=4, workers=1, progress=False, crop=64, seed=3)
    result = write_report(str(other), str(report), page_size=5)
    assert (result.samples, result.pages_written) == (4, 1) and "written anew" in result.note
    assert len(list((report / "img").rglob("*.jpg"))) == 4


def test_refuses_a_folder_that_is_not_a_report(superres, tmp_path):
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("keep me")
    result = run_cli("inspect", superres, "--html", foreign)
    assert result.returncode == 2 and "not empty and holds no pairgen report" in result.stderr
    assert [p.name for p in foreign.iterdir()] == ["mine.txt"]
    result = run_cli("inspect", superres, "--html", superres)
    assert result.returncode == 2 and "dataset folder itself" in result.stderr
    result = run_cli("inspect", superres, "--page-size", "4")
    assert result.returncode == 2 and "give --html DIR too" in result.stderr
    result = run_cli("inspect", superres, "--html", tmp_path / "site", "--page-size", "0")
    assert result.returncode == 2


def test_cli_writes_the_report(superres, tmp_path):
    result = run_cli("inspect", superres, "--html", tmp_path / "site", "--page-size", "6")
    assert result.returncode == 0, result.stderr
    assert "report: " in result.stdout and "20 samples on 4 pages: 4 written" in result.stdout
    assert "drawn parameters" in result.stdout  # the usual summary is still printed
    for name in ("index.html", "assets/report.js", "assets/report.css", "data/report.js", "report.json"):
        assert (tmp_path / "site" / name).is_file()


def test_a_damaged_shard_is_reported_and_retried(superres, tmp_path):
    copy = tmp_path / "shards"
    shutil.copytree(superres, copy)
    card = json.loads((copy / "dataset.json").read_text())
    victim = copy / card["shards"][1]["file"]  # samples 6..11
    with tarfile.open(victim) as archive:
        members = archive.getmembers()
    cut = members[7].offset  # inside the third sample: two samples survive
    victim.write_bytes(victim.read_bytes()[:cut + 100])
    report = tmp_path / "report"
    result = write_report(str(copy), str(report), page_size=PAGE)
    assert result.samples == 20 and any(card["shards"][1]["file"] in p for p in result.problems)
    entries = {e["i"]: e for p in (1, 2, 3) for e in page_data(report, p)["samples"]}
    assert sorted(entries) == list(range(20))
    lost = [i for i, e in entries.items() if "missing" in e]
    assert lost == [9, 10, 11]  # sample 8 was cut in its json: shown as far as it goes, and named
    assert all(len(entries[i]["tiles"]) == 2 for i in [*range(8), *range(12, 20)])
    problems = report_data(report)["problems"]
    assert any("key 000000008: lacks" in p for p in problems) and any("gave 3 of the 6" in p for p in problems)
    again = write_report(str(copy), str(report), page_size=PAGE)  # the page with the damage is tried again
    assert again.pages_written >= 1 and again.pages_reused >= 1


def test_flow_fields_get_notes_overlays_legends_and_keypoints(flow, tmp_path):
    report = tmp_path / "report"
    write_report(str(flow), str(report), page_size=PAGE)
    card, samples = read_back(flow)
    entry = page_data(report, 1)["samples"][0]
    sample = samples[0]
    tiles = {t["field"]: t for t in entry["tiles"]}
    assert list(tiles)[:2] == ["img0.png", "img1.png"] and "flow.npy" in tiles
    magnitude = np.hypot(*np.moveaxis(sample["flow.npy"].astype(np.float64), -1, 0)).max()
    assert tiles["flow.npy"]["note"].startswith(f"max |flow| {magnitude:.3g} px")
    assert tiles["depth0.npy"]["note"].startswith("near ")
    occ = tiles["occ.png"]
    assert occ["over"] == "img0.png"
    full = image(report / entry["full"]).astype(int)
    base = full[:32, tiles["img0.png"]["cell"]["x"]:][:, :32]
    laid = full[:32, occ["overlay_cell"]["x"]:][:, :32]
    occluded = sample["occ.png"] > 0
    assert occluded.any() and (~occluded).any()
    assert np.array_equal(laid[~occluded], base[~occluded])
    assert np.abs(laid[occluded] - base[occluded]).sum(axis=1).min() > 0
    # keypoints: frame t's on img0, frame t+K's on img1, as the record says
    for field, camera in (("img0.png", 0), ("img1.png", 1)):
        truth = sample["json"]["cameras"][camera]["keypoints"]
        drawn = {name: (x, y, v) for x, y, v, name in entry["keypoints"][field]}
        assert set(drawn) == set(truth)
        for name, point in truth.items():
            assert drawn[name][:2] == pytest.approx(point["xy"], abs=1e-3) and drawn[name][2] == int(point["visible"])
    data = report_data(report)
    assert data["has_keypoints"] and {"flow", "depth"} <= set(data["legends"])
    assert image(report / data["legends"]["flow"]["file"]).shape == VIEWS["flow"].legend().shape
    params = {p["name"] for p in data["params"]}
    assert {"flow_magnitude_max_px", "occluded_fraction"} <= params


@pytest.mark.parametrize("recipe", sorted(builtin_recipes()))
def test_every_builtin_recipe_gets_a_report(recipe, tmp_path):
    out = tmp_path / "shards"
    build(recipe, out=str(out), limit=3, shard_size=2, workers=1, progress=False, **tiny_options(recipe))
    card = json.loads((out / "dataset.json").read_text())
    result = write_report(str(out), str(tmp_path / "report"), page_size=2)
    assert result.problems == [] and result.pages == 2
    pictures = [n for n, f in card["fields"].items() if f["role"] != "meta"]
    for page in (1, 2):
        for entry in page_data(tmp_path / "report", page)["samples"]:
            assert [t["field"] for t in entry["tiles"]] == sorted(pictures, key=lambda n: ("input", "target", "aux").index(
                card["fields"][n]["role"]))
            assert all("cell" in t for t in entry["tiles"]), entry["tiles"]
            assert entry["params"] or card["task"] in ("flow", "depth", "style")  # recipes with steps record drawn ops


# ------------------------------------------------------------------------------------ the browser


@pytest.fixture(scope="module")
def browser():
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        pytest.fail(f"headless Chromium is needed for the report test but {', '.join(missing)} is missing: {INSTALL}")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail(f"selenium is not installed: {INSTALL}")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM  # both paths given: selenium never looks for a browser to download
    profile = tempfile.mkdtemp(prefix="pairgen-chromium-")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--hide-scrollbars", "--window-size=1280,900", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def wait_for(driver, script, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for: {script}")


def open_report(driver, report, fragment=""):
    driver.get((report / "index.html").as_uri() + fragment)
    wait_for(driver, "return document.body.dataset.ready")
    driver.get_log("browser")  # drop what came before; errors are checked by each caller


def console_errors(driver):
    return [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]


def check_page(driver, report, samples, columns, tile=160):
    """Page 1 and 2 show the right samples, every field at one size, zoom at full resolution."""
    driver.get((report / "index.html").as_uri())
    assert wait_for(driver, "return document.body.dataset.ready") == "1"
    assert console_errors(driver) == []
    rows = driver.find_elements("css selector", ".grow.sample")
    assert len(rows) == min(PAGE, samples)
    assert [int(r.get_attribute("data-i")) for r in rows] == list(range(len(rows)))
    sizes = driver.execute_script("return [...document.querySelectorAll('.grow.sample')].map("
                                  "r => [...r.querySelectorAll('.pic')].map(p => [p.clientWidth, p.clientHeight]))")
    assert all(len(row) == columns for row in sizes)
    assert {tuple(s) for row in sizes for s in row} == {(tile, tile)}  # an LR shows at its HR's size
    shot = np.frombuffer(driver.get_screenshot_as_png(), np.uint8)
    picture = cv2.imdecode(shot, cv2.IMREAD_COLOR)
    width, height = driver.execute_script("return [innerWidth * devicePixelRatio, innerHeight * devicePixelRatio]")
    assert picture.shape[:2] == (height, width) and picture.std() > 20  # not blank
    if samples > PAGE:
        driver.find_element("css selector", "#pager-top .next").click()
        assert wait_for(driver, "return document.body.dataset.ready") == "2"
        rows = driver.find_elements("css selector", ".grow.sample")
        assert [int(r.get_attribute("data-i")) for r in rows] == list(range(PAGE, min(2 * PAGE, samples)))
        assert "page=2" in driver.current_url
        driver.find_element("css selector", "#pager-top .prev").click()
        assert wait_for(driver, "return document.body.dataset.ready") == "1"
    assert console_errors(driver) == []
    return picture


def zoom_on(driver, column):
    driver.find_elements("css selector", ".grow.sample")[0].find_elements("css selector", ".pic")[column].click()
    wait_for(driver, "return !document.querySelector('#zoom').hidden && document.querySelector('#zimg').complete"
                     " && document.querySelector('#zimg').naturalWidth")


def zoomed(driver):
    return driver.execute_script(
        "const c = document.querySelector('#zcell'), i = document.querySelector('#zimg');"
        "return {field: c.dataset.field, scale: +c.dataset.scale, w: c.getBoundingClientRect().width,"
        " h: c.getBoundingClientRect().height, natural: [i.naturalWidth, i.naturalHeight]}")


def test_superres_report_in_chromium(browser, superres, tmp_path):
    report = tmp_path / "report"
    write_report(str(superres), str(report), page_size=PAGE)
    picture = check_page(browser, report, 20, 2)
    cv2.imwrite(str(tmp_path / "gallery.png"), picture)
    entry = page_data(report, 1)["samples"][0]
    zoom_on(browser, 0)  # the LR
    state = zoomed(browser)
    assert state["field"] == "lr.png" and state["natural"] == [entry["size"][1], entry["size"][2]]  # 16 + 64 wide, 64 high
    browser.find_element("css selector", "#zlevels [data-level='1:1']").click()
    state = zoomed(browser)
    assert state["scale"] == 4 and (state["w"], state["h"]) == (64, 64)  # LR pixels 4x, at the HR's size
    browser.find_element("xpath", "//div[@id='zfields']/button[text()='hr.png']").click()
    state = zoomed(browser)
    assert state["field"] == "hr.png" and state["scale"] == 1 and (state["w"], state["h"]) == (64, 64)
    browser.find_element("css selector", "#zlevels [data-level='4×']").click()
    assert zoomed(browser)["w"] == 256
    assert "jpeg1.quality" in browser.find_element("id", "zside").text
    browser.find_element("css selector", "body").send_keys("\ue00c")  # Escape
    wait_for(browser, "return document.querySelector('#zoom').hidden")
    # a filter by parameter range, as a link would carry it: JPEG quality <= 60
    data = report_data(report)
    quality = next(p for p in data["params"] if p["name"] == "jpeg1.quality")
    expected = [i for i, q in enumerate(column(report, quality)) if q is not None and q <= 60]
    fragment = "#f=" + json.dumps([{"p": quality["index"], "min": None, "max": 60}]).replace(" ", "")
    browser.get((report / "index.html").as_uri() + fragment)
    wait_for(browser, "return document.body.dataset.ready")
    assert browser.find_element("id", "matches").text == f"{len(expected)} of 20 samples match"
    rows = browser.find_elements("css selector", ".grow.sample")
    assert [int(r.get_attribute("data-i")) for r in rows] == expected[:PAGE]
    # the histograms tab: one chart per parameter; a bar click filters
    browser.find_element("css selector", "#tabs [data-tab='params']").click()
    assert len(browser.find_elements("css selector", ".hcard")) == len(data["params"])
    browser.find_element("css selector", ".hcard[data-param='blur1.kind'] .cat").click()
    wait_for(browser, "return document.body.dataset.ready && !document.querySelector('#gallery').hidden")
    kinds = next(p for p in data["params"] if p["name"] == "blur1.kind")
    both = [i for i, c in enumerate(column(report, kinds)) if c == 0 and i in expected]  # filters combine (and)
    assert browser.find_element("id", "matches").text == f"{len(both)} of 20 samples match"
    assert len(browser.find_elements("css selector", "#filterbar .chip")) == 2
    browser.find_element("css selector", "#tabs [data-tab='card']").click()
    assert "Conventions" in browser.find_element("id", "card").text
    assert console_errors(browser) == []


def test_flow_report_in_chromium(browser, flow, tmp_path):
    report = tmp_path / "report"
    write_report(str(flow), str(report), page_size=PAGE)
    card = json.loads((flow / "dataset.json").read_text())
    columns = sum(f["role"] != "meta" for f in card["fields"].values())
    check_page(browser, report, 3, columns)
    assert len(browser.find_elements("css selector", ".grow.sample")[0].find_elements("css selector", "svg.kp circle"))
    legends = browser.execute_script("return [...document.querySelectorAll('img.legend')].map(i => i.naturalWidth)")
    assert legends and all(w > 0 for w in legends)
    zoom_on(browser, 2)  # flow.npy
    assert zoomed(browser)["field"] == "flow.npy"
    assert "max |flow|" in browser.find_element("id", "zside").text
    browser.find_element("css selector", "body").send_keys("3")
    browser.find_element("css selector", "#zlevels [data-level='8×']").click()
    state = zoomed(browser)
    assert (state["w"], state["h"]) == (256, 256)
    assert console_errors(browser) == []


def test_edges_report_in_chromium(browser, edges, tmp_path):
    report = tmp_path / "report"
    write_report(str(edges), str(report), page_size=PAGE)
    check_page(browser, report, 12, 2, tile=160)
    open_report(browser, report, "#size=224")
    sizes = browser.execute_script("return [...document.querySelectorAll('.pic')].map(p => p.clientWidth)")
    assert set(sizes) == {224}
    zoom_on(browser, 0)
    state = zoomed(browser)
    assert state["field"] == "edges.png" and state["natural"][1] == 64
    assert console_errors(browser) == []


def test_hdf5_shards_give_the_same_pages(superres, tmp_path):
    h5 = tmp_path / "h5"
    build("superres", out=str(h5), limit=20, shard_size=6, workers=1, progress=False, crop=64, crops_per_image=2, format="hdf5")
    write_report(str(superres), str(tmp_path / "a"), page_size=PAGE)
    write_report(str(h5), str(tmp_path / "b"), page_size=PAGE)
    for page in (1, 2, 3):
        a, b = page_data(tmp_path / "a", page)["samples"], page_data(tmp_path / "b", page)["samples"]
        assert [(e["key"], e["params"], e["tiles"]) for e in a] == [(e["key"], e["params"], e["tiles"]) for e in b]
        for x, y in zip(a, b):
            assert np.array_equal(image(tmp_path / "a" / x["full"]), image(tmp_path / "b" / y["full"]))
