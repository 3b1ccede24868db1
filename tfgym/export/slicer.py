"""3D Slicer's volume property: ``.vp.json`` and the legacy 9-line ``.vp``.

Slicer (VTK's ``vtkVolumeProperty``) has no 2D TF: a sample's opacity is a scalar opacity of
its grey value times a gradient opacity of its gradient magnitude, and its colour depends on
the grey value only. tfgym's colour already does; its 2D opacity map ``A`` (gradient bins x
intensity bins, the TF's LUT alpha) is replaced by the closest separable map ``g a^T`` in the
least-squares sense: the leading singular pair of the non-negative ``A`` (non-negative by
Perron-Frobenius), scaled so ``max(g) = 1`` and clipped to [0, 1]. How far it is: the IoU of
the two maps, each thresholded at half its own maximum (``> 0.5 * max``); it is returned and
stored in the file (the JSON's ``"tfgym"`` metadata; the legacy format has no room for it).

Axes: the scalar opacity and colour are on the histogram's grey values, the gradient opacity
on tfgym's gradient magnitude (grey-value units per mm, see :mod:`tfgym.histogram`); VTK
computes gradients per voxel, so for a volume of spacing ``s`` mm multiply its x by ``s``.
Points sit at bin centres; VTK holds the end values outside them, as tfgym clamps to the
edge bins. Formats followed: Slicer's ``volume-property-schema-v1.0.0.json`` and its
``vtkMRMLVolumePropertyStorageNode`` (lines: interpolation, shade, diffuse, ambient,
specular, specular power, then the scalar opacity, gradient opacity and colour as
``count v1 v2 ...``; each line is read into a 1024-byte buffer, so curves are simplified to
fit).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tfgym.histogram import HistogramRanges
from tfgym.transfer_function import COLOR_SCHEMES, TransferFunction

__all__ = [
    "SLICER_SCHEMA",
    "SlicerExport",
    "opacity_map_iou",
    "read_slicer",
    "separable_opacity",
    "write_slicer",
]

SLICER_SCHEMA = (
    "https://raw.githubusercontent.com/slicer/slicer/main/Modules/Loadable/VolumeRendering/"
    "Resources/Schema/volume-property-schema-v1.0.0.json#"
)
LEGACY_LINE_MAX = 1023
IOU_THRESHOLD = 0.5
LIGHTING = {"ambient": 0.1, "diffuse": 0.9, "specular": 0.2, "specularPower": 10.0}


@dataclass(frozen=True)
class SlicerExport:
    """A volume property as Slicer reads it.

    Attributes:
        scalar_opacity: ``(n, 2)`` points ``(grey value, opacity)``.
        gradient_opacity: ``(m, 2)`` points ``(gradient magnitude, opacity)``.
        color: ``(k, 4)`` points ``(grey value, r, g, b)``.
        iou: IoU of the separable opacity map against the TF's (None when read from a file
            without tfgym's metadata).
        path: the file written or read.
    """

    scalar_opacity: np.ndarray
    gradient_opacity: np.ndarray
    color: np.ndarray
    iou: float | None
    path: Path | None = None


def separable_opacity(alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The closest separable map ``g[:, None] * a[None, :]`` to a non-negative opacity map.

    Args:
        alpha: ``(n_gradient_bins, n_intensity_bins)`` in [0, 1].

    Returns:
        ``(a, g)``: float64 scalar opacity ``(n_intensity_bins,)`` and gradient opacity
        ``(n_gradient_bins,)``, both in [0, 1], ``max(g) = 1`` (zeros for an empty map).

    Example:
        >>> a, g = separable_opacity(np.outer([0.5, 1.0], [0.0, 0.8, 0.4]))
        >>> np.round(a, 6).tolist(), np.round(g, 6).tolist()
        ([0.0, 0.8, 0.4], [0.5, 1.0])
    """
    m = np.asarray(alpha, dtype=np.float64)
    if m.ndim != 2 or not np.all(np.isfinite(m)) or m.min(initial=0.0) < 0:
        raise ValueError(f"alpha must be a finite non-negative 2D map, got shape {m.shape}")
    if not m.any():
        return np.zeros(m.shape[1]), np.zeros(m.shape[0])
    u, s, vt = np.linalg.svd(m, full_matrices=False)
    g, a = np.abs(u[:, 0]), np.abs(vt[0]) * s[0]
    top = g.max()
    a, g = np.clip(a * top, 0.0, 1.0), g / top
    a[a < 1e-12], g[g < 1e-12] = 0.0, 0.0  # SVD round-off
    return a, g


def opacity_map_iou(alpha: np.ndarray, approx: np.ndarray) -> float:
    """IoU of two opacity maps, each thresholded at ``> 0.5 *`` its own maximum.

    Example:
        >>> opacity_map_iou(np.array([[1.0, 0.0]]), np.array([[0.9, 0.9]]))
        0.5
    """
    masks = [
        np.asarray(x) > IOU_THRESHOLD * np.max(x) if np.max(x) > 0 else np.zeros(np.shape(x), bool)
        for x in (alpha, approx)
    ]
    union = np.logical_or(*masks).sum()
    return 1.0 if union == 0 else float(np.logical_and(*masks).sum() / union)


def _simplify(points: np.ndarray, tol: float = 1e-4) -> np.ndarray:
    """Drop points that linear interpolation of their kept neighbours reproduces within tol."""
    keep = [0]
    for i in range(1, len(points) - 1):
        x0, y0 = points[keep[-1]]
        x1, y1 = points[i + 1]
        t = (points[i, 0] - x0) / (x1 - x0)
        if abs(y0 + t * (y1 - y0) - points[i, 1]) > tol:
            keep.append(i)
    keep.append(len(points) - 1)
    return points[keep]


def _color_points(tf: TransferFunction, ranges: HistogramRanges) -> np.ndarray:
    lo, top = ranges.intensity_min, ranges.color_top
    return np.array([(lo + p * (top - lo), *rgb) for p, rgb in COLOR_SCHEMES[tf.color_scheme]])


def _legacy_line(points: np.ndarray) -> tuple[str, np.ndarray]:
    """``count v1 v2 ...`` in %.6g, simplified until it fits Slicer's line buffer."""
    tol = 1e-4
    while True:
        pts = _simplify(points, tol) if points.shape[1] == 2 else points
        pts = np.array([[float(f"{v:.6g}") for v in row] for row in pts])
        line = " ".join([str(pts.size), *(f"{v:.6g}" for v in pts.ravel())])
        if len(line) <= LEGACY_LINE_MAX:
            return line, pts
        tol *= 2.0


def write_slicer(
    tf: TransferFunction,
    path: str | Path,
    ranges: HistogramRanges,
    *,
    legacy: bool = False,
    unit_distance: float = 1.0,
) -> SlicerExport:
    """Write ``tf`` as a Slicer volume property (``.vp.json``, or legacy ``.vp``).

    Args:
        tf: the transfer function.
        path: the file to write.
        ranges: the histogram the TF is applied to (its grey values and gradients).
        legacy: write the 9-line ``.vp`` text format instead of JSON.
        unit_distance: ``scalarOpacityUnitDistance`` (mm over which the opacity applies).

    Returns:
        The points written and the IoU of the separable approximation (also printed).

    Example:
        >>> import tempfile
        >>> tf = TransferFunction(((0, -1), (1, -1), (1, 1), (0, 1)))
        >>> r = HistogramRanges(0.0, 100.0, 10.0, 8, 8)
        >>> out = write_slicer(tf, Path(tempfile.mkdtemp()) / "tf.vp.json", r)
        Slicer export: separable opacity IoU 1.000 (thresholds > 0.5 * max)
        >>> read_slicer(out.path).iou
        1.0
    """
    alpha = tf.lut(ranges)[..., 3].astype(np.float64)
    a, g = separable_opacity(alpha)
    iou = opacity_map_iou(alpha, np.outer(g, a))
    xs = ranges.bin_to_intensity(np.arange(ranges.n_intensity_bins) + 0.5)
    gs = ranges.bin_to_gradient(np.arange(ranges.n_gradient_bins) + 0.5)
    so, go = np.column_stack([xs, a]), np.column_stack([gs, g])
    color = _color_points(tf, ranges)
    out = Path(path)
    if legacy:
        (s_line, so), (g_line, go), (c_line, color) = map(_legacy_line, (so, go, color))
        lines = ["1", "1", *(f"{LIGHTING[k]:g}" for k in ("diffuse", "ambient", "specular"))]
        lines += [f"{LIGHTING['specularPower']:g}", s_line, g_line, c_line]
        out.write_text("\n".join(lines) + "\n")
    else:
        so, go = _simplify(so, 1e-9), _simplify(go, 1e-9)

        def curve(pts: np.ndarray) -> dict[str, Any]:
            rows = [
                {"x": float(x), "y": float(y), "midpoint": 0.5, "sharpness": 0.0} for x, y in pts
            ]
            return {"type": "piecewiseLinearFunction", "points": rows}

        colors = [
            {
                "x": float(r[0]),
                "color": [float(c) for c in r[1:]],
                "midpoint": 0.5,
                "sharpness": 0.0,
            }
            for r in color
        ]
        doc = {
            "@schema": SLICER_SCHEMA,
            "volumeProperties": [
                {
                    "effectiveRange": [ranges.intensity_min, ranges.intensity_max],
                    "interpolationType": "linear",
                    "independentComponents": True,
                    "components": [
                        {
                            "shade": True,
                            "lighting": dict(LIGHTING),
                            "scalarOpacityUnitDistance": float(unit_distance),
                            "scalarOpacity": curve(so),
                            "gradientOpacity": curve(go),
                            "rgbTransferFunction": {
                                "type": "colorTransferFunction",
                                "points": colors,
                            },
                        }
                    ],
                }
            ],
            "tfgym": {
                "separable_opacity_iou": iou,
                "iou_threshold": f"> {IOU_THRESHOLD} * max of each map",
                "gradient_units": "grey value per mm",
                "transfer_function": tf.to_dict(),
            },
        }
        out.write_text(json.dumps(doc, indent=2))
    print(f"Slicer export: separable opacity IoU {iou:.3f} (thresholds > {IOU_THRESHOLD} * max)")
    return SlicerExport(so, go, color, iou, out)


def _parse_legacy_curve(line: str, width: int, what: str, name: str) -> np.ndarray:
    try:
        values = [float(t) for t in line.split()]
    except ValueError:
        raise ValueError(f"{name}: the {what} line must hold numbers, got {line!r}") from None
    if not values or values[0] != len(values) - 1 or (len(values) - 1) % width:
        raise ValueError(
            f"{name}: the {what} line must be a count then that many values, a multiple of "
            f"{width}, got {line[:60]!r}"
        )
    return np.asarray(values[1:], dtype=np.float64).reshape(-1, width)


def _json_curve(d: Any, keys: tuple[str, ...], what: str, name: str) -> np.ndarray:
    try:
        rows = [np.hstack([np.asarray(p[k], dtype=np.float64) for k in keys]) for p in d["points"]]
        out = np.asarray(rows, dtype=np.float64)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{name}: malformed {what} points: {e!r}") from None
    if out.ndim != 2 or len(out) == 0:
        raise ValueError(f"{name}: {what} has no points")
    return out


def read_slicer(path: str | Path) -> SlicerExport:
    """Read a Slicer volume property: ``.vp.json``, or the legacy ``.vp`` (by content).

    Args:
        path: the file.

    Returns:
        Its first component's scalar opacity, gradient opacity and colour points, and the
        IoU from tfgym's metadata (None if absent, always for the legacy format).

    Raises:
        FileNotFoundError: no such file.
        ValueError: a malformed file; the message names the file and the part.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"Slicer volume property not found: {p}")
    text = p.read_text()
    name = str(p)
    if text.lstrip().startswith("{"):
        try:
            doc = json.loads(text)
            comp = doc["volumeProperties"][0]["components"][0]
        except json.JSONDecodeError as e:
            raise ValueError(f"{name}: malformed JSON: {e}") from e
        except (KeyError, IndexError, TypeError):
            raise ValueError(
                f"{name}: not a Slicer volume property: expected volumeProperties[0].components[0]"
            ) from None
        if "volume-property-schema" not in str(doc.get("@schema", "")):
            raise ValueError(f"{name}: '@schema' is not Slicer's volume-property-schema")
        so = _json_curve(comp.get("scalarOpacity"), ("x", "y"), "scalarOpacity", name)
        go = _json_curve(comp.get("gradientOpacity"), ("x", "y"), "gradientOpacity", name)
        color = _json_curve(comp.get("rgbTransferFunction"), ("x", "color"), "colour", name)
        if color.shape[1] != 4:
            raise ValueError(f"{name}: colour points must be x and an RGB triple")
        meta = doc.get("tfgym") or {}
        iou = meta.get("separable_opacity_iou")
        return SlicerExport(so, go, color, None if iou is None else float(iou), p)
    lines = text.splitlines()
    if len(lines) < 9:
        raise ValueError(f"{name}: a legacy .vp file has 9 lines, got {len(lines)}")
    for i, what in enumerate(
        ("interpolation type", "shade", "diffuse", "ambient", "specular", "specular power")
    ):
        try:
            float(lines[i])
        except ValueError:
            raise ValueError(
                f"{name}: line {i + 1} ({what}) must be a number, got {lines[i]!r}"
            ) from None
    so = _parse_legacy_curve(lines[6], 2, "scalar opacity", name)
    go = _parse_legacy_curve(lines[7], 2, "gradient opacity", name)
    color = _parse_legacy_curve(lines[8], 4, "colour", name)
    return SlicerExport(so, go, color, None, p)
