"""Fast batched emission-absorption volume renderer for 2D transfer functions.

Model: every voxel of the working volume is classified by its joint-histogram bin through the
TF lookup table (opacity and colour per bin, pre-classification, nearest voxel) and the
volume is composited front to back along the view axis, one sample per voxel:

    T_d = prod_{k<d} (1 - alpha_k),   C = sum_d T_d * alpha_d * shade_d * rgb_d,
    A = 1 - prod_d (1 - alpha_d)

On the CPU a compiled (numba) kernel marches each ray front to back and stops once the ray is
opaque (transmittance below 1e-4), TFs of a batch in parallel; on a torch device such as
``"cuda"`` the same sums are computed densely for the whole batch (log-space cumulative sum).
Shading is gradient based: a headlight along the view direction with
``shade = ambient + diffuse * |n . l|`` where ``n`` is the normalised intensity gradient
(voxels with a near-zero gradient are lit fully).

Camera: orthographic, along a volume axis, with the view presets of :data:`VIEWS`. The square
image covers the projected bounding box of the volume, centred, the larger side filling it;
the projected plane is resampled to the image with a tent filter (bilinear when enlarging,
area-weighted when shrinking). The image background is black; ``rgb`` is premultiplied colour
composited over black and ``alpha`` the accumulated opacity.

For the oracle the renderer also reports how much each tissue label contributed: the sum over
the projected plane of ``T_d * alpha_d`` over voxels of that label, in plane pixels (a fully
opaque label covering ``k`` pixels in front contributes ``k``), broken down by which labels
the voxel's neighbours have (:func:`voxel_classes`: labels within one voxel of the scan's
reference grid, so the partial-volume shell is as thick in mm at every working size).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numba
import numpy as np

from tfgym.render_kernels import (
    banded,
    composite_interpolated,
    composite_jobs,
    composite_serial,
    resample_matrix,
    resample_parallel,
    resample_serial,
)
from tfgym.scene import N_CLASSES, Scene
from tfgym.views import AMBIENT, DIFFUSE, VIEWS, view_geometry, view_vectors
from tfgym.volume import Tissue
from tfgym.voxel_classes import class_mask, shell_radius, silhouette_area, voxel_classes

if TYPE_CHECKING:
    import torch

__all__ = [
    "VIEWS",
    "RenderBatch",
    "Renderer",
    "check_device",
    "class_mask",
    "shell_radius",
    "silhouette_area",
    "view_geometry",
    "voxel_classes",
]

N_LABELS = len(Tissue)
# voxels x TFs composited at once by the dense torch path (bounds memory)
MAX_CHUNK_ELEMENTS = {"cpu": 1 << 22, "cuda": 1 << 28}


PARALLEL_MIN_VOXELS = 1 << 20  # voxels x TFs from which the work is spread over cores


def check_device(device: str) -> None:
    """Fail early, with a clear message, for a device this machine cannot render on.

    ``"cpu"`` is the compiled kernel; any other name is a torch device, checked here (so an
    env with ``device="cuda"`` on a machine without CUDA fails at construction, not at the
    first step).

    Raises:
        ValueError: an unknown device name, or a CUDA device without CUDA.
    """
    if str(device).split(":")[0] == "cpu":
        return
    try:
        import torch
    except ImportError as e:  # pragma: no cover - torch is a hard dependency
        from gymnasium.error import DependencyNotInstalled

        raise DependencyNotInstalled(
            "rendering on a torch device needs torch: pip install torch"
        ) from e
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise ValueError(f"unknown device {device!r}: {e}") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {device!r} needs CUDA, but torch finds no CUDA device here; use "
            "device='cpu' (the compiled CPU kernel)"
        )


@dataclass(frozen=True)
class RenderBatch:
    """Renderings of a batch of TFs of one scene.

    Attributes:
        rgb: uint8 ``(batch, H, W, 3)``, premultiplied colour over a black background.
        alpha: float32 ``(batch, H, W)`` accumulated opacity in [0, 1].
        class_contrib: float32 ``(batch, n_labels, 32)``, contribution of the voxels of each
            tissue label and neighbour-label bit set (:func:`tfgym.scene.tissue_classes`) in
            plane pixels (see module docstring).
        view: the camera preset they were rendered from.
    """

    rgb: np.ndarray
    alpha: np.ndarray
    class_contrib: np.ndarray
    view: str = "front"

    @property
    def label_contrib(self) -> np.ndarray:
        """float32 ``(batch, n_labels)``: contribution of each tissue label (``Tissue`` index)."""
        return self.class_contrib.sum(axis=2)

    def __len__(self) -> int:
        """Batch size."""
        return self.rgb.shape[0]


class Renderer:
    """Renders batches of TF lookup tables for one scene and view.

    Args:
        scene: the scene (working volume, bins, labels).
        image_size: output images are ``image_size x image_size``.
        view: a key of :data:`VIEWS` (or ``"side"``).
        shading: gradient-based headlight shading on/off.
        device: torch device, ``"cpu"`` (default) or e.g. ``"cuda"``.
        samples_per_voxel: 1 (default, the fast pre-classified renderer of training and
            search) or more for display quality: the grey value and gradient are
            interpolated between consecutive voxels of a ray and classified at each of
            ``samples_per_voxel`` samples (post-classification), which removes the
            "wood-grain" terraces that one sample per voxel draws on smooth surfaces. CPU
            only.

    Example:
        >>> from tfgym.scene import load_scene
        >>> from tfgym.transfer_function import TransferFunction
        >>> scene = load_scene("headsq")
        >>> tf = TransferFunction(((0.2, -1), (1, -1), (1, 1), (0.2, 1)))
        >>> out = Renderer(scene, image_size=32).render(tf.lut(scene.ranges)[None])
        >>> out.rgb.shape, out.alpha.shape, out.label_contrib.shape
        ((1, 32, 32, 3), (1, 32, 32), (1, 5))
    """

    def __init__(
        self,
        scene: Scene,
        *,
        image_size: int = 128,
        view: str = "front",
        shading: bool = True,
        device: str = "cpu",
        samples_per_voxel: int = 1,
    ) -> None:
        """Precompute the view-ordered volume, shading and resampling matrices."""
        if image_size < 8:
            raise ValueError(f"image_size must be at least 8, got {image_size}")
        if isinstance(samples_per_voxel, bool) or int(samples_per_voxel) != samples_per_voxel:
            raise ValueError(f"samples_per_voxel must be an integer, got {samples_per_voxel!r}")
        self.samples_per_voxel = int(samples_per_voxel)
        if not 1 <= self.samples_per_voxel <= 16:
            raise ValueError(f"samples_per_voxel must be in 1..16, got {samples_per_voxel}")
        if self.samples_per_voxel > 1 and str(device).split(":")[0] != "cpu":
            raise ValueError("samples_per_voxel > 1 (display quality) renders on the CPU only")
        self.scene, self.image_size, self.view = scene, int(image_size), view
        self.shading = bool(shading)
        check_device(device)
        self.device_name = str(device)
        self._use_kernel = self.device_name.split(":")[0] == "cpu"
        bins, classes, shade = self._view_arrays()
        self.depth, self.rows, self.cols = bins.shape
        if self._use_kernel:  # ray-major (rows*cols, depth) for the compiled kernel
            # compact types halve the memory traffic: bins fit uint16 up to 256x256 bins,
            # shading is quantised to 8 bits (as VTK's normal/gradient tables are)
            bin_type = (
                np.uint16 if scene.ranges.shape[0] * scene.ranges.shape[1] <= 65536 else np.int32
            )
            self._ray_bins = np.ascontiguousarray(bins.reshape(self.depth, -1).T.astype(bin_type))
            quantised = np.round(np.clip(shade, 0.0, 1.0) * 255.0).astype(np.uint8)
            self._ray_shade = np.ascontiguousarray(quantised.reshape(self.depth, -1).T)
            self._ray_classes = np.ascontiguousarray(classes.reshape(self.depth, -1).T)
            if self.samples_per_voxel > 1:
                self._ray_uv = self._interpolation_coords()
        self._dense: tuple[Any, ...] | None = None  # torch path, built on first use
        scale = max(self.rows, self.cols) / self.image_size
        self._ry_np = resample_matrix(self.rows, self.image_size, scale, self.rows / 2)
        self._rx_np = resample_matrix(self.cols, self.image_size, scale, self.cols / 2)
        self._ry_band, self._rx_band = banded(self._ry_np), banded(self._rx_np)

    def _view_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Bins, labels and shading, ordered ``(depth, rows, cols)`` for the view."""
        perm, flips = view_geometry(self.view)
        flip_axes = tuple(i for i, f in enumerate(flips) if f)

        def arrange(a: np.ndarray) -> np.ndarray:
            return np.ascontiguousarray(np.flip(np.transpose(a, perm), flip_axes))

        bins = arrange(self.scene.bins)
        if self.shading:
            shade = arrange(self._shading(self.scene, self.view, smooth=self.samples_per_voxel > 1))
        else:
            shade = np.ones(bins.shape, np.float32)
        return bins, arrange(voxel_classes(self.scene)), shade

    def _interpolation_coords(self) -> tuple[np.ndarray, np.ndarray]:
        """Continuous histogram coordinates (intensity, gradient bins) per voxel, ray-major."""
        perm, flips = view_geometry(self.view)
        flip_axes = tuple(i for i, f in enumerate(flips) if f)
        ranges = self.scene.ranges
        out = []
        for values, to_bin in (
            (self.scene.volume.data, ranges.intensity_to_bin),
            (self.scene.gradient, ranges.gradient_to_bin),
        ):
            coord = np.flip(np.transpose(to_bin(values).astype(np.float32), perm), flip_axes)
            out.append(np.ascontiguousarray(coord.reshape(self.depth, -1).T))
        return out[0], out[1]

    def _corrected(self, luts: np.ndarray) -> np.ndarray:
        """LUTs with opacity corrected for the step (working voxel / samples vs reference)."""
        exponent = self.scene.opacity_scale / self.samples_per_voxel
        if abs(exponent - 1.0) < 1e-9:
            return luts
        out = np.array(luts, dtype=np.float32, copy=True)
        alpha = np.clip(out[..., 3], 0.0, 1.0 - 1e-7)
        out[..., 3] = 1.0 - np.power(1.0 - alpha, exponent)
        return out

    def _dense_tensors(self) -> tuple[Any, ...]:
        """Tensors of the dense torch path on ``self.device``, built once."""
        if self._dense is None:
            import torch

            bins, classes, shade = self._view_arrays()
            dev = self.device
            # class sums as segment sums over voxels sorted by class (no atomics, no one-hot)
            flat = classes.reshape(-1).astype(np.int64)
            order = np.argsort(flat, kind="stable")
            ends = np.searchsorted(flat[order], np.arange(N_CLASSES), side="right")
            self._dense = (
                torch.from_numpy(bins.reshape(-1).astype(np.int64)).to(dev),
                torch.from_numpy(order).to(dev),
                torch.from_numpy(ends).to(dev),
                torch.from_numpy(shade.reshape(self.depth, -1)).to(dev),
                torch.from_numpy(self._ry_np).to(dev),
                torch.from_numpy(self._rx_np).to(dev),
            )
        return self._dense

    @staticmethod
    def _shading(scene: Scene, view: str, *, smooth: bool = False) -> np.ndarray:
        """Headlight shading per voxel; ``smooth``: normals of the volume blurred by 1 voxel.

        Display quality smooths the normals (as volume renderers do): central differences
        across a sharp surface that lies at an angle to the voxel grid wobble from voxel to
        voxel and draw contour rings on smooth bone.
        """
        dop, _ = view_vectors(view)
        data, spacing = scene.volume.data, scene.volume.spacing
        if smooth:
            from scipy import ndimage

            data = ndimage.gaussian_filter(data, 1.0, mode="nearest")
        gz, gy, gx = np.gradient(data, *spacing)
        dot = gx * dop[0] + gy * dop[1] + gz * dop[2]
        # the normal's own length on the working grid (scene.gradient is the histogram's
        # gradient, estimated at the reference scale, and would not normalise it)
        mag = np.sqrt(gx * gx + gy * gy + gz * gz)
        flat = mag < 1e-3 * scene.ranges.gradient_max
        cos = np.abs(dot) / np.where(flat, 1.0, mag)
        return np.where(flat, 1.0, AMBIENT + DIFFUSE * cos).astype(np.float32)

    def silhouette_area(
        self, tissues: tuple[Tissue, ...] | list[Tissue], *, shell: bool = False
    ) -> int:
        """Plane pixels whose ray passes through ``tissues`` (see :func:`silhouette_area`)."""
        return silhouette_area(self.scene, self.view, tissues, shell=shell)

    @property
    def device(self) -> Any:
        """The torch device of the dense path (imports torch)."""
        import torch

        return torch.device(self.device_name)

    def render(self, luts: Any) -> RenderBatch:
        """Render a batch of LUTs.

        Args:
            luts: ``(batch, n_gradient_bins, n_intensity_bins, 4)`` RGBA in [0, 1] (or a
                single LUT without the batch axis); a numpy array, or a torch tensor.

        Returns:
            The :class:`RenderBatch`.
        """
        if self._use_kernel and not type(luts).__module__.startswith("torch"):
            return self._render_kernel(np.asarray(luts, dtype=np.float32))
        import torch

        with torch.no_grad():
            if self._use_kernel:  # a torch tensor for the CPU kernel
                return self._render_kernel(np.asarray(torch.as_tensor(luts).cpu(), np.float32))
            if abs(self.scene.opacity_scale - 1.0) > 1e-9:
                luts = self._check_luts(np.asarray(torch.as_tensor(luts).cpu(), np.float32))
                luts = self._corrected(luts)
            lut = torch.as_tensor(luts, dtype=torch.float32, device=self.device)
            lut = self._check_luts(lut)
            lut = lut.reshape(lut.shape[0], -1, 4).clamp(0.0, 1.0)
            limit = MAX_CHUNK_ELEMENTS.get(self.device.type, MAX_CHUNK_ELEMENTS["cpu"])
            chunk = max(1, limit // (self.depth * self.plane_pixels))
            parts = [self._render_chunk(lut[i : i + chunk]) for i in range(0, lut.shape[0], chunk)]
            rgb, alpha, contrib = (torch.cat(p, 0) for p in zip(*parts, strict=True))
            rgb_u8 = (rgb * 255.0 + 0.5).clamp(0, 255).to(torch.uint8)
            return RenderBatch(
                rgb=rgb_u8.cpu().numpy(),
                alpha=alpha.cpu().numpy(),
                class_contrib=contrib.cpu().numpy().reshape(-1, N_LABELS, 32),
                view=self.view,
            )

    def _check_luts(self, lut: Any) -> Any:
        if lut.ndim == 3:
            lut = lut[None]
        expected = (*self.scene.ranges.shape, 4)
        if lut.ndim != 4 or tuple(lut.shape[1:]) != expected:
            raise ValueError(f"LUTs must have shape (batch, {expected}), got {tuple(lut.shape)}")
        return lut

    def _render_kernel(self, luts: np.ndarray) -> RenderBatch:
        lut = self._corrected(self._check_luts(luts))
        lut = np.ascontiguousarray(lut.reshape(lut.shape[0], -1, 4))
        if self.samples_per_voxel > 1:
            n_blocks = max(1, -(-4 * numba.get_num_threads() // lut.shape[0]))
            u, v = self._ray_uv
            planes, contrib = composite_interpolated(
                u,
                v,
                self._ray_shade,
                self._ray_classes,
                lut,
                self.scene.ranges.n_intensity_bins,
                self.samples_per_voxel,
                N_CLASSES,
                n_blocks,
            )
            return self._finish(planes, contrib)
        args = (self._ray_bins, self._ray_shade, self._ray_classes, lut, N_CLASSES)
        # Small jobs (the env step) never touch numba's thread pool: even asking for its
        # size starts it, and its spinning threads cost vector envs 4x on 2 cores.
        if lut.shape[0] * self._ray_bins.size < PARALLEL_MIN_VOXELS:
            planes, contrib = composite_serial(*args)
        else:  # whole TFs per job when there are enough, else blocks of rays too
            n_blocks = max(1, -(-4 * numba.get_num_threads() // lut.shape[0]))
            planes, contrib = composite_jobs(*args, n_blocks)
        return self._finish(planes, contrib)

    def _finish(self, planes: np.ndarray, contrib: np.ndarray) -> RenderBatch:
        """Resample composited planes to images and package them."""
        planes = planes.reshape(-1, self.rows, self.cols, 4)
        resample = resample_parallel if len(planes) >= 4 else resample_serial
        img = resample(planes, *self._ry_band, *self._rx_band)  # (b, H, W, 4)
        rgb = np.clip(img[..., :3] * 255.0 + 0.5, 0, 255).astype(np.uint8)
        alpha = np.clip(img[..., 3], 0.0, 1.0)
        return RenderBatch(
            rgb=rgb,
            alpha=alpha,
            class_contrib=contrib.astype(np.float32).reshape(-1, N_LABELS, 32),
            view=self.view,
        )

    def _render_chunk(self, lut: torch.Tensor) -> tuple[torch.Tensor, ...]:
        import torch

        b, depth, n = lut.shape[0], self.depth, self.rows * self.cols
        bins, order, ends, shade, ry, rx = self._dense_tensors()
        alpha_lut = lut[..., 3].clamp(max=1.0 - 1e-6)

        def per_voxel(table: torch.Tensor) -> torch.Tensor:  # (b, K) -> (b, depth, n)
            return table.index_select(1, bins).view(b, depth, n)

        log_t = per_voxel(torch.log1p(-alpha_lut))
        transmit = torch.exp(torch.cumsum(log_t, dim=1) - log_t)  # T before each sample
        weight = per_voxel(alpha_lut).mul_(transmit)  # (b, depth, n)
        csum = torch.cumsum(weight.view(b, -1).index_select(1, order).double(), dim=1)
        csum = torch.nn.functional.pad(csum, (1, 0))
        contrib = torch.diff(csum.index_select(1, ends), dim=1, prepend=csum[:, :1]).float()
        lit = weight * shade
        planes = torch.empty(b, n, 4, device=self.device)
        for c in range(3):
            planes[..., c] = (lit * per_voxel(lut[..., c].contiguous())).sum(dim=1)
        planes[..., 3] = weight.sum(dim=1)  # == 1 - prod(1 - alpha)
        img = torch.einsum("hr,brcx,wc->bhwx", ry, planes.view(b, self.rows, self.cols, 4), rx)
        return img[..., :3], img[..., 3].clamp(0.0, 1.0), contrib

    @functools.cached_property
    def plane_pixels(self) -> int:
        """Number of pixels of the projected plane (``rows * cols``)."""
        return self.rows * self.cols
