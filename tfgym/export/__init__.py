"""Export tfgym transfer functions to the viewers people already use.

Modules:

* :mod:`tfgym.export.imagevis3d`: ImageVis3D's ``.2dt`` (Tuvok ``TransferFunction2D``), which
  holds the polygon exactly;
* :mod:`tfgym.export.slicer`: 3D Slicer's volume property (``.vp.json`` and the legacy
  ``.vp``), a separable approximation whose IoU against the TF is reported;
* :mod:`tfgym.export.vtk`: the 2D TF as a VTK ``.vti`` image and a pyvista script.

All are pure numpy + json (VTK only where the vtk module says so).
"""

from __future__ import annotations

from tfgym.export.imagevis3d import (
    ImageVis3DSwatch,
    ImageVis3DTransferFunction,
    read_2dt,
    write_2dt,
)
from tfgym.export.slicer import (
    SlicerExport,
    opacity_map_iou,
    read_slicer,
    separable_opacity,
    write_slicer,
)
from tfgym.export.vtk import TfAxes, VtkExport, export_vtk, read_vti, write_vti

__all__ = [
    "ImageVis3DSwatch",
    "ImageVis3DTransferFunction",
    "SlicerExport",
    "TfAxes",
    "VtkExport",
    "export_vtk",
    "opacity_map_iou",
    "read_2dt",
    "read_slicer",
    "read_vti",
    "separable_opacity",
    "write_2dt",
    "write_slicer",
    "write_vti",
]
