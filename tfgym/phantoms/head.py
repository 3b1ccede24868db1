"""The whole head of one phantom: every painter, in painting order."""

from __future__ import annotations

from tfgym.phantoms.aids import AidsPainter
from tfgym.phantoms.face import FacePainter
from tfgym.phantoms.neck import NeckPainter
from tfgym.phantoms.restorations import RestorationPainter
from tfgym.phantoms.soft import SoftTissuePainter

__all__ = ["Head"]


class Head(SoftTissuePainter, FacePainter, RestorationPainter, NeckPainter, AidsPainter):
    """Paints the labels and noise-free HU of one phantom on its voxel grid.

    Construct it like :class:`tfgym.phantoms.grid.HeadGrid`, then call :meth:`build`; the
    result is in ``lab`` (uint8 :class:`tfgym.volume.Tissue` labels), ``hu`` (float32) and
    ``metal`` (world centre and half height of each metal object). Positioning aids are
    labelled AIR (:mod:`tfgym.phantoms.aids`).
    """

    def build(self) -> None:
        """Paint all structures, outermost first."""
        self.envelope()
        self.brain()
        self.skull()
        self.face()
        self.jaws()
        self.spine()
        self.airway()
        self.teeth()
        self.restorations()
        self.aids()
