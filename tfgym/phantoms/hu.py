"""Nominal HU-like values of the phantom's tissues, before any scanner artefact."""

from __future__ import annotations

__all__ = [
    "HU_AIR",
    "HU_CANCELLOUS",
    "HU_CORTICAL",
    "HU_CSF",
    "HU_DENTIN",
    "HU_ENAMEL",
    "HU_FAT",
    "HU_GREY",
    "HU_METAL",
    "HU_SKIN",
    "HU_SOFT",
    "HU_TITANIUM",
    "HU_WHITE",
]

HU_AIR, HU_FAT, HU_SOFT, HU_SKIN = -1000.0, -100.0, 45.0, 35.0
HU_GREY, HU_WHITE, HU_CSF = 37.0, 29.0, 8.0
HU_CORTICAL, HU_CANCELLOUS = 1200.0, 700.0
HU_ENAMEL, HU_DENTIN, HU_METAL = 2600.0, 1900.0, 16000.0
HU_TITANIUM = 8000.0  # implants: titanium attenuates about half as much as amalgam
