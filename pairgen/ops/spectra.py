"""Film emulsions as spectral sensitivities, and their weights on linear sRGB (no operation here).

How a weight vector is derived (``emulsion_weights``): a pixel's linear sRGB value (r, g, b) is
read as a reflectance spectrum ``r B_r + g B_g + b B_b`` with the sRGB spectral basis of
Mallett & Yuksel (2019), whose three functions sum to 1 (white reflects everything). Lit by an
illuminant E (daylight: CIE D65; tungsten: CIE illuminant A, Planck at 2856 K) and recorded by an
emulsion of spectral sensitivity S, the pixel's exposure is

    H = sum over wavelengths of S(l) E(l) (r B_r(l) + g B_g(l) + b B_b(l))  =  w . (r, g, b)

so w_c = sum S E B_c, normalised to sum to 1 (a white patch exposes as 1 under either light; the
exposure step sets the level). The tables are sampled at 5 nm over 380-780 nm
(``pairgen/data/film/spectral_basis.csv``, with their sources). The same sum with S = the CIE
luminous efficiency y-bar and E = D65 gives back Rec.709 luma (0.2126, 0.7152, 0.0722) to 0.005,
which the tests check: the method, not a set of chosen numbers, makes every preset's weights.

Where each sensitivity curve comes from (``EMULSIONS``):
* Kodak Tri-X 400 and Eastman Double-X 5222: the datasheets' log spectral-sensitivity curves as
  digitized by JanLohse/spectral_film_lut (MIT), in ``pairgen/data/film/*.csv``.
* Ilford HP5 Plus, FP4 Plus, Delta 100, Delta 400: no digitized Ilford curve was found (searched
  Dec 2026: JanLohse/spectral_film_lut digitizes only Kodak's B&W stocks, Tri-X 400 and 5222;
  Entropy512/rgb_led_filmscan and agx-emulsion's profiles hold colour films; W-Mai/filmr's Ilford
  presets use one generic panchromatic curve), so the curves are an inference. darktable's
  channel-mixer presets (``src/iop/channelmixerrgb.c``, made from Ilford's datasheets) give each
  film's response to daylight as weights on darktable's working space, linear Rec.2020. Converted
  to linear sRGB (ITU-R BT.2087 matrix), they fix a curve of the Tri-X family: Tri-X's
  sensitivity times a smooth piecewise-linear tilt through 450, 550 and 650 nm whose three
  heights are solved so the curve reproduces those daylight weights exactly. The tungsten
  weights then follow from the curve, which darktable does not give.
* blue_sensitive, orthochromatic, panchromatic: emulsion types, as piecewise-linear relative
  sensitivities with the published cut-offs (plain silver halide responds up to ~520 nm;
  orthochromatic film is blind beyond ~590-600 nm; panchromatic reaches ~660-680 nm).
* luminance: CIE y-bar itself (what a desaturation to luminance would be), the baseline.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numpy as np

DATA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "film")
ILLUMINANTS = ("daylight", "tungsten")
TUNGSTEN_KELVIN = 2856.0  # CIE illuminant A (c2 = 1.4388e-2 m K, ITS-90)
# BT.2087: linear Rec.709 -> linear Rec.2020 (rows: Rec.2020 r, g, b)
REC709_TO_REC2020 = np.array([[0.6274, 0.3293, 0.0433], [0.0691, 0.9195, 0.0114], [0.0164, 0.0880, 0.8956]])


@dataclass(frozen=True)
class Emulsion:
    """name: the recipe's name for it; kind: blue_sensitive | orthochromatic | panchromatic |
    luminance; iso: box speed; rms_granularity: diffuse RMS granularity x1000 at density 1.0,
    48 um aperture (the datasheets' figure; drives the grain); source: where the numbers come from."""

    name: str
    kind: str
    iso: float
    rms_granularity: float
    source: str


# Type curves: (nm, relative sensitivity) corners; zero beyond the last one.
TYPE_CURVES = {
    "blue_sensitive": ((380, 1.0), (480, 1.0), (520, 0.0)),
    "orthochromatic": ((380, 1.0), (470, 1.0), (500, 0.75), (540, 0.9), (570, 0.85), (590, 0.3), (600, 0.0)),
    "panchromatic": ((380, 1.0), (470, 1.0), (500, 0.8), (550, 0.85), (620, 0.85), (660, 0.3), (680, 0.0)),
}
# darktable channelmixerrgb.c B&W presets "from Ilford datasheets" (linear Rec.2020 weights)
DARKTABLE_ILFORD = {
    "ilford_hp5_plus": (0.253, 0.260, 0.487),
    "ilford_fp4_plus": (0.241, 0.221, 0.537),
    "ilford_delta_100": (0.246, 0.254, 0.501),
    "ilford_delta_400": (0.244, 0.236, 0.520),
}
_ILFORD_RMS_SOURCE = "RMS: independent tests compiled in W-Mai/filmr (Ilford publishes none; unverified)"
EMULSIONS = {e.name: e for e in (
    Emulsion("blue_sensitive", "blue_sensitive", 10, 8, "type curve; early plates and papers (speed and grain assumed)"),
    Emulsion("orthochromatic", "orthochromatic", 80, 10, "type curve; speed of Ilford Ortho Plus, grain assumed"),
    Emulsion("panchromatic", "panchromatic", 100, 10, "type curve; speed and grain of a generic 100 film"),
    Emulsion("luminance", "luminance", 100, 10, "CIE 1931 y-bar: plain luminance, the desaturation baseline"),
    Emulsion("kodak_tri_x_400", "panchromatic", 400, 17, "Kodak F-4017 (curve digitized by JanLohse/spectral_film_lut); RMS 17"),
    Emulsion("kodak_double_x_5222", "panchromatic", 250, 14, "Kodak 5222/7222 datasheet (digitized by JanLohse/spectral_film_lut); RMS 14"),
    Emulsion("ilford_hp5_plus", "panchromatic", 400, 16, f"darktable's Ilford preset, Tri-X-family curve; {_ILFORD_RMS_SOURCE}"),
    Emulsion("ilford_fp4_plus", "panchromatic", 125, 11, f"darktable's Ilford preset, Tri-X-family curve; {_ILFORD_RMS_SOURCE}"),
    Emulsion("ilford_delta_100", "panchromatic", 100, 7, f"darktable's Ilford preset, Tri-X-family curve; {_ILFORD_RMS_SOURCE}"),
    Emulsion("ilford_delta_400", "panchromatic", 400, 11, f"darktable's Ilford preset, Tri-X-family curve; {_ILFORD_RMS_SOURCE}"),
)}


def read_table(name: str) -> dict[str, np.ndarray]:
    """A CSV of ``pairgen/data/film`` ('#' comment lines, one header row) -> column name -> values."""
    path = os.path.join(DATA_DIR, name)
    with open(path, encoding="utf-8") as handle:
        rows = [line.strip() for line in handle if line.strip() and not line.startswith("#")]
    header = rows[0].split(",")
    values = np.array([[float(v) for v in row.split(",")] for row in rows[1:]], dtype=np.float64)
    return {column: values[:, i] for i, column in enumerate(header)}


def planck(nm: np.ndarray, kelvin: float) -> np.ndarray:
    """Relative spectral radiance of a black body (Planck's law), 100 at 560 nm."""
    c2 = 1.4388e-2
    def radiance(lam):
        return 1.0 / (lam**5 * (np.exp(c2 / (lam * kelvin)) - 1.0))
    return 100.0 * radiance(nm * 1e-9) / radiance(560e-9)


@functools.lru_cache(maxsize=1)
def spectral_tables() -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """(nm, sRGB basis (n, 3), illuminant name -> SPD, CIE y-bar), 5 nm steps."""
    t = read_table("spectral_basis.csv")
    nm = t["nm"]
    basis = np.stack([t["basis_r"], t["basis_g"], t["basis_b"]], axis=1)
    return nm, basis, {"daylight": t["d65"], "tungsten": planck(nm, TUNGSTEN_KELVIN)}, t["cie_y"]


def rgb_exposures(sensitivity: np.ndarray, illuminant: str) -> np.ndarray:
    """(3,): the exposure that pure linear-sRGB red, green and blue reflectances give, for a
    sensitivity sampled on ``spectral_tables``' grid."""
    _, basis, spds, _ = spectral_tables()
    return ((sensitivity * spds[illuminant])[:, None] * basis).sum(axis=0)


def weights_from_sensitivity(sensitivity: np.ndarray, illuminant: str) -> np.ndarray:
    """w (3,) on linear sRGB, summing to 1."""
    w = rgb_exposures(sensitivity, illuminant)
    return w / w.sum()


def _datasheet_curve(file: str, nm: np.ndarray) -> np.ndarray:
    t = read_table(file)
    return np.interp(nm, t["nm"], 10.0 ** t["log_sensitivity"], left=0.0, right=0.0)


def _ilford_curve(name: str, nm: np.ndarray) -> np.ndarray:
    tri_x = _datasheet_curve("kodak_tri_x_400.csv", nm)
    tilts = np.stack([np.interp(nm, [450, 550], [1, 0]), np.interp(nm, [450, 550, 650], [0, 1, 0]),
                      np.interp(nm, [550, 650], [0, 1])])
    bands = tri_x * tilts
    per_band = np.stack([rgb_exposures(b, "daylight") for b in bands])  # (band, rgb)
    target = np.asarray(DARKTABLE_ILFORD[name]) @ REC709_TO_REC2020
    heights = np.linalg.solve(per_band.T, target / target.sum())
    if np.any(heights <= 0):
        raise ValueError(f"{name}: the fitted sensitivity is not positive ({heights})")
    return heights @ bands


@functools.lru_cache(maxsize=None)
def sensitivity_curve(name: str) -> np.ndarray:
    """The emulsion's relative spectral sensitivity on ``spectral_tables``' wavelengths."""
    nm, _, _, cie_y = spectral_tables()
    if name not in EMULSIONS:
        raise ValueError(f"unknown emulsion {name!r}; allowed: {', '.join(EMULSIONS)}")
    if name == "luminance":
        return cie_y
    if name in TYPE_CURVES:
        x, v = zip(*TYPE_CURVES[name])
        return np.interp(nm, x, v, left=v[0], right=0.0)
    if name in DARKTABLE_ILFORD:
        return _ilford_curve(name, nm)
    return _datasheet_curve({"kodak_tri_x_400": "kodak_tri_x_400.csv", "kodak_double_x_5222": "kodak_5222.csv"}[name], nm)


@functools.lru_cache(maxsize=None)
def emulsion_weights(name: str, illuminant: str) -> tuple[float, float, float]:
    """Weights on linear sRGB of emulsion ``name`` under ``illuminant`` (daylight | tungsten)."""
    if illuminant not in ILLUMINANTS:
        raise ValueError(f"unknown illuminant {illuminant!r}; allowed: {', '.join(ILLUMINANTS)}")
    w = weights_from_sensitivity(sensitivity_curve(name), illuminant)
    return tuple(round(float(v), 6) for v in w)
