"""The CBCT scanner model: reconstruction kernel, projection-domain artefacts, grey values.

:func:`scan` turns the noise-free HU that a :class:`tfgym.phantoms.grid.HeadGrid` has painted
into what a cone-beam CT scanner delivers, in its grey values. Every physical length is in mm,
so a scan looks the same at any ``size`` apart from partial volume. In order:

1. Tissue texture (patient factor): a smooth +-18 HU variation of soft tissue, on the painted
   grid (twice as fine as the volume for ``size <= 128``), which is then resampled,
   anti-aliased, to the volume's grid.
2. Reconstruction kernel (``kernel``): a Gaussian of 0.4-1.2 mm; a sharp kernel adds an edge
   overshoot (unsharp mask of 1.5 mm).
3. Projection-domain artefacts, slice by slice: each axial slice is projected (parallel
   beams, 180 degrees) together with the head outside the reconstructed cylinder, the
   projections go through the physics below, and the error is reconstructed by filtered
   back-projection with the same kernel, so artefacts have the shape real ones have:

   * ``beam_hardening``: the measured line integral loses ``beta * p_d**2 / (1 + p_d / 2)``,
     ``p_d`` the line integral of the attenuation above soft tissue's (bone, teeth, metal):
     dark bands between petrous bones and between the jaws, cupping inside thick bone, and
     dark bands and streaks between metal pieces, growing with the amount of metal. Metal is
     projected with 2.5 times the attenuation it is painted with (its real one), so it starves
     the beam as amalgam and crowns do;
   * ``scatter``: a residual scatter fraction adds to the transmitted beam, modulated at low
     frequency across the detector (``shading``): cupping (0-25 %) and shading, stronger in
     larger fields of view, and dark streaks between metal pieces;
   * ``noise``: quantum noise of the dose that gives ``noise`` HU at the centre of the head;
     rays through metal starve of photons (a floor of one count): streaky noise and dark
     bands between metal pieces;
   * ``fov``: rays through the cylinder also cross the head outside it; the detector's
     truncated projections are extrapolated as water cylinders (the usual correction), and
     the mismatch leaves a bright rim (+200-350 HU within 5 mm) near the cylinder's edge.

4. Cone-beam shading (``scatter``): up to 5 % less attenuation at the top and bottom.
5. Field of view: outside the cylinder the scanner writes its background value and the labels
   are AIR (no data).
6. Grey-value mapping (``grey_mapping``): window, gamma, integer quantisation and clipping.
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.sparse as sparse
from scipy import ndimage

from tfgym.phantoms.factors import FACTORS
from tfgym.phantoms.grid import HeadGrid
from tfgym.phantoms.hu import HU_AIR
from tfgym.phantoms.spec import PhantomSpec
from tfgym.volume import Tissue, Volume, resample_volume

__all__ = ["MU_WATER", "scan"]

MU_WATER = 0.019
"""Linear attenuation of water in 1/mm at the effective energy of a CBCT beam (~70 keV)."""
_MAX_PROJECTION_PIXELS = 128  # the projection model runs on at most 128 x 128 pixels a slice
_UNSHARP_MM = 1.5
# Above 3000 HU (metal), attenuation counts _METAL_BOOST times in the projections: amalgam and
# metal crowns attenuate 2-3 times more than the value they are painted with.
_METAL_MU = 4.0 * MU_WATER
_METAL_BOOST = 2.5
# The linear interpolation of the back-projection halves the variance of the filtered noise
# (measured on the phantoms: 0.7 of the predicted standard deviation).
_BACKPROJECTION_VARIANCE = 0.5
_EXTRAPOLATE_MM = 150.0  # the longest extrapolation of a truncated projection


def _mu(hu: np.ndarray) -> np.ndarray:
    return (hu - np.float32(HU_AIR)) * np.float32(MU_WATER / 1000.0)


def _apply_kernel(hu: np.ndarray, h: float, sigma_mm: float, sharpen: float) -> np.ndarray:
    """Gaussian blur of ``sigma_mm`` and, for a sharp kernel, an unsharp-mask overshoot."""
    out = hu
    if sigma_mm / h > 0.2:
        out = ndimage.gaussian_filter(hu, sigma_mm / h, mode="nearest", truncate=3.0)
    if sharpen > 0.0:
        smooth = ndimage.gaussian_filter(out, _UNSHARP_MM / h, mode="nearest", truncate=3.0)
        out = out + np.float32(sharpen) * (out - smooth)
    return out


def _texture(head: HeadGrid, rng: np.random.Generator) -> np.ndarray:
    """Smooth variation of soft tissue (muscle vs connective tissue, brain inhomogeneity)."""
    wave = np.zeros(1, np.float32)
    for k, axis in enumerate(head.axes[::-1]):  # z, y, x
        w = np.zeros_like(axis)
        for f, ph in zip(rng.uniform(0.02, 0.08, 3), rng.uniform(0, 2 * np.pi, 3), strict=True):
            w += 6.0 * np.cos(f * axis + ph)
        shape = [1, 1, 1]
        shape[k] = -1
        wave = wave + w.astype(np.float32).reshape(shape)
    return wave * (head.lab == Tissue.SOFT_TISSUE)


def _downsample_labels(lab: np.ndarray) -> np.ndarray:
    """Labels of 2 x 2 x 2 blocks: the most frequent tissue; METAL wherever the block has any."""
    nz, ny, nx = (n // 2 for n in lab.shape)
    blocks = lab.reshape(nz, 2, ny, 2, nx, 2).transpose(0, 2, 4, 1, 3, 5).reshape(-1, 8)
    counts = np.zeros((blocks.shape[0], len(Tissue)), np.uint8)
    for t in Tissue:
        counts[:, t] = np.count_nonzero(blocks == t, axis=1)
    out = counts.argmax(axis=1).astype(np.uint8)
    out[counts[:, Tissue.METAL] > 0] = Tissue.METAL
    return out.reshape(nz, ny, nx)


# -- the projection model -------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _system(n: int, n_angles: int) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
    """Parallel-beam projector of the n x n pixels inside the inscribed circle, and its adjoint.

    Rows are ``angle * n + bin`` (n detector bins of one pixel, centred), columns are pixels in
    row-major ``(y, x)`` order; a pixel spreads over its two nearest bins (linear weights).
    """
    c = np.arange(n) - (n - 1) / 2.0
    x, y = np.meshgrid(c, c)
    px = np.flatnonzero((x * x + y * y).ravel() <= (n / 2.0) ** 2)
    theta = np.arange(n_angles) * np.pi / n_angles
    s = np.cos(theta)[:, None] * x.ravel()[px] + np.sin(theta)[:, None] * y.ravel()[px]
    b = s + (n - 1) / 2.0
    lo = np.floor(b).astype(np.int64)
    frac = (b - lo).astype(np.float32)
    rows, cols, vals = [], [], []
    for off, w in ((0, 1.0 - frac), (1, frac)):
        ok = (lo + off >= 0) & (lo + off < n)
        rows.append(((np.arange(n_angles)[:, None] * n) + lo + off)[ok])
        cols.append(np.broadcast_to(px, lo.shape)[ok])
        vals.append(w[ok])
    a = sparse.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_angles * n, n * n),
        dtype=np.float32,
    )
    return a, a.T.tocsr()


def _filter(n_ext: int, a: float, sigma_mm: float, sharpen: float) -> np.ndarray:
    """Frequency response of the Ram-Lak ramp apodised by the kernel (length ``2 * n_ext``)."""
    m = 2 * n_ext
    k = np.fft.fftfreq(m)
    j = np.round(k * m).astype(int)  # tap index -m/2 .. m/2 in fft order
    h = np.zeros(m)
    h[j == 0] = 1.0 / (4.0 * a * a)
    odd = j % 2 == 1
    h[odd] = -1.0 / (np.pi * j[odd] * a) ** 2
    freq = k / a  # cycles per mm
    window = np.exp(-2.0 * (np.pi * sigma_mm * freq) ** 2)
    window *= 1.0 + sharpen * (1.0 - np.exp(-2.0 * (np.pi * _UNSHARP_MM * freq) ** 2))
    return np.real(np.fft.fft(h)) * a * window


def _water_cylinder_tails(sino: np.ndarray, a: float, pad: int) -> tuple[np.ndarray, ...]:
    """Extrapolation of truncated projections beyond both detector edges (``pad`` bins each).

    Each edge is continued by the projection of the water cylinder whose projection matches
    the edge's value and slope (Hsieh et al., Med. Phys. 2004), the usual truncation correction.
    The head beyond is not a water cylinder: the mismatch leaves a bright rim of about +200-350
    HU within 5 mm of the cylinder's edge where the head is cut, the interior within ~20 HU.
    Returns the tails beyond the last and before the first bin, ``(angles, pad, columns)``.
    """
    mu = np.float32(MU_WATER)
    t = (np.arange(1, pad + 1) * a).astype(np.float32)[None, :, None]
    tails = []
    for edge, inner in ((sino[:, -1:], sino[:, -4:-3]), (sino[:, :1], sino[:, 3:4])):
        q = np.maximum(edge, 0.0) / (2.0 * mu)  # half chord at the edge
        slope = (edge - inner) / np.float32(3.0 * a)  # d p / d t, t outwards
        # The cylinder's centre, from the edge; at most a quarter of the half chord beyond it
        # (a steep rise at the edge is the head thickening, not a cylinder far outside).
        centre = np.clip(slope * q / (2.0 * mu), -q, 0.25 * q)
        radius2 = q * q + centre * centre
        tails.append(2.0 * mu * np.sqrt(np.clip(radius2 - (t - centre) ** 2, 0.0, None)))
    return tails[0], tails[1][:, ::-1]


def _fbp(sino: np.ndarray, a: float, spec: PhantomSpec, extend: bool) -> np.ndarray:
    """Filtered back-projection of sinograms ``(angles, n, columns)`` -> ``(n * n, columns)``.

    With ``extend``, each truncated projection is continued beyond the detector as the
    scanner's truncation correction does (:func:`_water_cylinder_tails`). Its mismatch with the
    head beyond leaves a bright rim near the cylinder's edge where the head is cut.
    """
    k, n, cols = sino.shape
    pad = int(np.ceil(_EXTRAPOLATE_MM / a)) if extend else 0
    ext = np.zeros((k, n + 2 * pad, cols), np.float32)
    ext[:, pad : pad + n] = sino
    if pad:
        ext[:, pad + n :], ext[:, :pad] = _water_cylinder_tails(sino, a, pad)
    response = _filter(n + 2 * pad, a, spec.kernel, spec.sharpen)
    m = 2 * (n + 2 * pad)
    spectrum = np.fft.rfft(ext, m, axis=1) * response[: m // 2 + 1, None]
    filtered = np.fft.irfft(spectrum, m, axis=1)[:, pad : pad + n]
    q = np.ascontiguousarray(filtered, dtype=np.float32).reshape(k * n, cols)
    return (_system(n, k)[1] @ q) * np.float32(np.pi / k)


def _outside_projections(
    context: HeadGrid, centre: np.ndarray, z_out: np.ndarray, n: int, k: int, a: float
) -> np.ndarray:
    """Projections ``(k * n, len(z_out))`` of the head outside the cylinder (from ``context``).

    ``centre`` is the cylinder's axis and ``z_out`` the volume's slice heights, in the
    context's world frame (mm). The coarse context is projected onto detector bins of its own
    voxel size, then interpolated linearly onto the volume's bins and heights.
    """
    cx, cy, cz = (ax.astype(np.float64) for ax in context.axes)
    x, y = np.meshgrid(cx - centre[0], cy - centre[1])
    out = ((x * x + y * y) > ((n * a) / 2.0) ** 2).ravel()
    mu = _mu(context.hu).reshape(len(cz), -1)[:, out]
    b = context.h
    m = int(np.ceil(n * a / b)) + 3
    theta = np.arange(k) * np.pi / k
    s = np.cos(theta)[:, None] * x.ravel()[out] + np.sin(theta)[:, None] * y.ravel()[out]
    pos = s / b + (m - 1) / 2.0
    lo = np.floor(pos).astype(np.int64)
    frac = (pos - lo).astype(np.float32)
    rows, cols, vals = [], [], []
    for off, w in ((0, 1.0 - frac), (1, frac)):
        ok = (lo + off >= 0) & (lo + off < m)
        rows.append((np.arange(k)[:, None] * m + lo + off)[ok])
        cols.append(np.broadcast_to(np.arange(out.sum()), lo.shape)[ok])
        vals.append(w[ok] * np.float32(b))
    proj = sparse.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(k * m, int(out.sum())),
    )
    p = (proj @ mu.T.astype(np.float32)).reshape(k, m, len(cz))
    fine = (np.arange(n) - (n - 1) / 2.0) * a / b + (m - 1) / 2.0
    p = _lerp(p, fine, axis=1)
    zpos = np.interp(z_out, cz, np.arange(len(cz)))
    return _lerp(p, zpos, axis=2).reshape(k * n, -1)


def _lerp(a: np.ndarray, pos: np.ndarray, axis: int) -> np.ndarray:
    """Linear interpolation of ``a`` at fractional indices ``pos`` along ``axis``."""
    size = a.shape[axis]
    pos = np.clip(pos, 0, size - 1)
    lo = np.minimum(np.floor(pos).astype(int), max(size - 2, 0))
    w = (pos - lo).astype(np.float32)
    shape = [1] * a.ndim
    shape[axis] = -1
    w = w.reshape(shape)
    hi = np.minimum(lo + 1, size - 1)
    return np.take(a, lo, axis=axis) * (1 - w) + np.take(a, hi, axis=axis) * w


def _projection_grid(
    hu: np.ndarray, h: float, diameter: float
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Slices ``(n * n, nz)`` of the volume's attenuation on the square around the cylinder.

    The volume's in-plane grid is padded with air to the cylinder's square and block-averaged
    by ``f`` to at most ``_MAX_PROJECTION_PIXELS`` pixels a side. Returns the attenuation
    columns and the grid ``(n, f, py, px)``: pixels a side, block size and the padding before
    the volume's first row and column.
    """
    nz, ny, nx = hu.shape
    side = max(ny, nx, round(diameter / h))
    f = -(-side // _MAX_PROJECTION_PIXELS)
    side = f * (-(-side // f))
    py, px = (side - ny) // 2, (side - nx) // 2
    mu = np.pad(_mu(hu), ((0, 0), (py, side - ny - py), (px, side - nx - px)))
    n = side // f
    if f > 1:
        mu = mu.reshape(nz, n, f, n, f).mean(axis=(2, 4))
    return np.ascontiguousarray(mu.reshape(nz, n * n).T), (n, f, py, px)


def _artefacts(
    spec: PhantomSpec,
    hu: np.ndarray,
    h: float,
    z_out: np.ndarray,
    context: tuple[HeadGrid, np.ndarray] | None,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Artefact and noise fields (HU, the volume's shape) of the projection model."""
    nz, ny, nx = hu.shape
    mu, grid = _projection_grid(hu, h, spec.fov.diameter)
    n, a = grid[0], grid[1] * h
    k = n
    sys_a = _system(n, k)[0]
    p_in = (sys_a @ mu) * np.float32(a)
    dense = np.maximum(mu - np.float32(1.1 * MU_WATER), 0.0)
    p_d = (sys_a @ dense) * np.float32(a)
    # Metal attenuates _METAL_BOOST times more than it is painted: the projections, and so
    # the reconstruction where photons still get through, see its real attenuation.
    metal = np.maximum(mu - np.float32(_METAL_MU), 0.0)
    p_m = (sys_a @ metal) * np.float32(a * (_METAL_BOOST - 1.0))
    p = p_in + p_m
    if context is not None:
        p = p + _outside_projections(context[0], context[1], z_out, n, k, a)
    p_d = p_d + p_m
    p_eff = p - np.float32(spec.beam_hardening) * p_d * p_d / (1.0 + p_d / np.float32(2.0))
    s = (np.arange(n) - (n - 1) / 2.0) / (n / 2.0)
    theta = np.arange(k)[:, None] * np.pi / k
    u = rng.uniform(0, 2 * np.pi, 4)
    mod = np.cos(1.6 * s * np.cos(theta + u[0]) + u[1]) * np.cos(2 * theta + u[2])
    mod = 0.5 * mod + 0.5 * np.cos(0.8 * s + u[3])
    kappa = np.float32(spec.scatter) * (1.0 + spec.shading * mod).reshape(-1, 1)
    transmitted = np.exp(-p_eff)
    if spec.noise > 0.0:
        # Photons per ray that give ``noise`` HU at the centre of the head (see _fbp).
        energy = float(np.mean(_filter(n, a, spec.kernel, spec.sharpen) ** 2))
        thick = np.exp(p.reshape(k, n, nz).max(axis=1)).mean(axis=0)
        q_ref = float(np.median(thick[thick > np.exp(1.0)])) if (thick > np.exp(1.0)).any() else 1.0
        photons = (1000.0 / MU_WATER) ** 2 * np.pi**2 / k * energy * q_ref / spec.noise**2
        photons *= _BACKPROJECTION_VARIANCE
        floor = np.float32(1.0 / photons)
    else:
        photons, floor = 0.0, np.float32(0.0)
    measured = -np.log(transmitted + kappa + floor)
    error = (measured - p_in).reshape(k, n, nz)
    fields = [error]
    if photons > 0.0:
        sd = 1.0 / np.sqrt(photons * (transmitted + kappa) + 1.0)
        fields.append((sd * rng.standard_normal(sd.shape, dtype=np.float32)).reshape(k, n, nz))
    rec = [_fbp(f, a, spec, extend=i == 0) for i, f in enumerate(fields)]
    scale = np.float32(1000.0 / MU_WATER)
    art = _to_volume(rec[0] * scale, grid, hu.shape)
    noise = np.zeros_like(art)
    if len(rec) > 1:
        noise = _to_volume(rec[1] * scale, grid, hu.shape)
        c = np.arange(n) - (n - 1) / 2.0
        disc = ((c[:, None] ** 2 + c[None, :] ** 2) <= (n / 2.0 - 1.0) ** 2).ravel()
        sd_before = float(rec[1][disc].std() * scale)
        sigma = spec.kernel / h  # CBCT noise is correlated along z too
        if sigma > 0.3:
            noise = ndimage.gaussian_filter1d(noise, sigma, axis=0, mode="nearest")
        # Regridding and the z correlation smooth the noise: keep its level in the cylinder.
        inside = ~_outside(ny, nx, h, spec.fov.diameter / 2.0 - a)
        noise *= np.float32(sd_before / max(float(noise[:, inside].std()), 1e-6))
    return art, noise


def _outside(ny: int, nx: int, h: float, radius: float) -> np.ndarray:
    """In-plane mask ``(ny, nx)`` of the voxels outside a centred circle of ``radius`` mm."""
    y = (np.arange(ny) - (ny - 1) / 2.0) * h
    x = (np.arange(nx) - (nx - 1) / 2.0) * h
    return (x[None, :] ** 2 + y[:, None] ** 2) > radius**2


def _to_volume(cols: np.ndarray, grid: tuple[int, int, int, int], shape: tuple) -> np.ndarray:
    """Columns ``(n * n, nz)`` on the projection grid, interpolated onto the volume's grid."""
    n, f, py, px = grid
    nz, ny, nx = shape
    img = cols.T.reshape(nz, n, n)
    for axis, pad, size in ((1, py, ny), (2, px, nx)):  # pixel centres of f x f blocks
        img = _lerp(img, (np.arange(size) + pad - (f - 1) / 2.0) / f, axis=axis)
    return np.ascontiguousarray(img, dtype=np.float32)


def scan(
    spec: PhantomSpec,
    head: HeadGrid,
    shape: tuple[int, int, int],
    context: tuple[HeadGrid, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Turn a painted head into the scanner's grey values and the volume's labels.

    Args:
        spec: the phantom's parameters.
        head: the painted head; its grid is ``shape`` or twice as fine along every axis.
        shape: the volume's shape ``(nz, ny, nx)``.
        context: for a field of view smaller than the head, a coarse painting of the whole
            head over the same heights and the cylinder's axis ``(x, y, z)`` in its world
            frame (mm): what the beams cross outside the cylinder.

    Returns:
        ``(data, labels)``: float32 grey values and uint8 :class:`tfgym.volume.Tissue` labels.
    """

    def stream(name: str, *extra: int) -> np.random.Generator:
        return np.random.default_rng([spec.seed, FACTORS[name].stream, *extra])

    hu = head.hu
    if "patient" not in spec.neutral:
        hu = hu + _texture(head, stream("patient", 1))
    labels = head.lab
    h = head.h
    if head.shape != tuple(shape):
        h = 2.0 * head.h
        hu = resample_volume(Volume(hu, (head.h,) * 3), max(shape)).data
        labels = _downsample_labels(labels)
    # The kernel is linear: applied after the resampling it costs an eighth.
    hu = _apply_kernel(hu, h, spec.kernel, spec.sharpen)
    assert hu.shape == labels.shape == tuple(shape), (hu.shape, labels.shape, shape)
    nz, ny, nx = shape
    z_out = (np.arange(nz) - (nz - 1) / 2.0) * h
    rng = stream("noise", 1, max(shape))
    art, noise = _artefacts(spec, hu, h, z_out, context, rng)
    zeta = (np.arange(nz) - (nz - 1) / 2.0) / (nz / 2.0)
    cone = (1.0 - spec.cone_shading * zeta**2).astype(np.float32)[:, None, None]
    hu = (hu - np.float32(HU_AIR)) * cone + np.float32(HU_AIR) + art + noise
    outside = _outside(ny, nx, h, spec.fov.diameter / 2.0)
    data = spec.to_grey(hu)
    data[:, outside] = np.float32(spec.mapping.background)
    labels = labels.copy()
    labels[:, outside] = Tissue.AIR
    return data, labels
