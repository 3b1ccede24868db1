"""The variation factors of the phantom distribution: what varies between real CBCT scans.

Each factor has its own random stream (``np.random.default_rng([seed, stream])``), so setting
one factor to its neutral value (``make_phantom(seed, neutral={"noise"})``) changes that
factor only and leaves every other draw of the seed as it was. That is how
``benchmarks/bench_scenes.py`` measures how far each factor moves the target's cluster in the
normalised joint histogram.

The table :data:`FACTORS` names each factor, its real-world cause and its documented range;
the modules that implement them say how.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FACTORS", "Factor", "check_neutral"]


@dataclass(frozen=True)
class Factor:
    """One variation factor.

    Attributes:
        name: key used in ``neutral=``.
        stream: index of the factor's random stream, ``default_rng([seed, stream])``.
        cause: the real-world cause of the variation.
        range: the range drawn, in words (units, distribution, how often).
        neutral: what the factor is when neutralised.
    """

    name: str
    stream: int
    cause: str
    range: str
    neutral: str


FACTORS: dict[str, Factor] = {
    f.name: f
    for f in (
        Factor(
            "fov",
            1,
            "the protocol's field of view (a cylinder): a small dental one of both jaws, a "
            "maxillofacial one from chin to orbits, or the whole head; the voxel size follows "
            "it, and a head wider than it leaves truncation artefacts (bright rim near its edge)",
            "dental 35 % (76-100 mm diameter x 60-90 mm high, on the jaws), maxillofacial 30 % "
            "(100-150 x 75-140 mm, chin upwards), whole head 35 % (256 x 256 x 208 mm box in a "
            "256 mm cylinder); small ones off by up to 3/5/5 mm (x/y/z) of positioning",
            "the whole-head field of view, centred as the default phantom",
        ),
        Factor(
            "noise",
            2,
            "dose (mA s, pulses, kV): quantum noise of the projections, reconstructed by "
            "filtered back-projection (grainy, streaky along long paths), and photon "
            "starvation behind metal (streaks, dark bands)",
            "10-120 HU standard deviation at the centre of the head at the volume's voxel size, "
            "log-uniform (10: high dose, 120: low-dose paediatric protocol); correlated over "
            "the kernel's width in mm",
            "no noise and no photon starvation (unlimited dose)",
        ),
        Factor(
            "scatter",
            3,
            "scattered photons on the flat panel (wide cone, no grid) left after the "
            "scanner's correction: cupping, low-frequency shading, dark streaks between dense "
            "objects; more for larger irradiated volumes; plus cone-beam shading at top/bottom",
            "scatter fraction 0-0.022 of the open beam in a whole-head FOV (0-25 % lower "
            "attenuation at the head's centre), scaled by (irradiated volume)^0.7; shading "
            "+-50 % of it across the detector; 0-5 % cone-beam shading",
            "no scatter and no cone-beam shading",
        ),
        Factor(
            "beam_hardening",
            4,
            "the polychromatic spectrum (kV, filtration) beyond the scanner's water "
            "precorrection: dense bone and metal harden the beam, so rays through them read "
            "too little attenuation",
            "line integrals lose 0-0.2 x p^2 / (1 + p / 2), p the water-equivalent path "
            "through material denser than soft tissue: up to about -150 HU between petrous "
            "bones, cupping in thick bone, dark bands and streaks between metal pieces",
            "monochromatic beam (no beam hardening)",
        ),
        Factor(
            "metal",
            5,
            "dental restorations: amalgam fillings, metal crowns and bridges, titanium implants",
            "none for ~1/3 of seeds, else 1, 2, 4 or 7 restorations (P .2/.18/.16/.12) on the "
            "patient's teeth (occlusal or MOD amalgam, metal crowns) and gaps (implant with "
            "crown, or a bridge: pontic and two crowns); children: molars only, no implant",
            "no metal (unless make_phantom(metal=True))",
        ),
        Factor(
            "kernel",
            6,
            "the reconstruction kernel (filter and interpolation): sharp kernels for bone and "
            "teeth, smooth ones for soft tissue; shapes edges, noise grain and streaks",
            "Gaussian of 0.4-1.2 mm (uniform); kernels sharper than 0.8 mm add up to 60 % "
            "edge overshoot (unsharp mask of 1.5 mm), more the sharper",
            "a 0.8 mm Gaussian without overshoot",
        ),
        Factor(
            "grey_mapping",
            7,
            "the vendor's export of grey values: calibrated or not, bit depth, window, a "
            "non-linear curve of uncalibrated CBCT grey values, saturation of either end",
            "12/14/16-bit integers (P .4/.2/.4); 30 % signed HU-like (gain 0.85-1.15, offset "
            "-80..80); 70 % unsigned with a -1250..-850 HU dark end (air clipped in a third), "
            "a 2300-4500 HU bright end (teeth/metal saturate, 40 %) or 6000-24000 HU, gamma "
            "0.6-1.6 (60 %, log-uniform)",
            "HU as float values: no quantisation, no clipping, linear",
        ),
        Factor(
            "patient",
            8,
            "age, dentition, bone density and body fat differ between patients",
            "child 8-12 y (P .2: smaller head, milk canines/molars over permanent tooth germs "
            "in the bone), adult (P .55: a few missing teeth), elderly (P .25: many missing "
            "teeth, up to one fully edentulous jaw, alveolar ridges resorbed 6-13 mm, thinner "
            "cortex); bone density x0.72-1.1; subcutaneous fat 2-10 mm",
            "a standard adult: 28 teeth (no third molars), bone density 1, 5.5 mm fat",
        ),
        Factor(
            "aids",
            9,
            "positioning aids in the field of view (labelled AIR: not patient)",
            "headrest behind the occiput P .55 (foam -750..-600 HU on a plastic shell, or "
            "plastic 100-300 HU), chin rest P .3, bite block 3-6 mm P .3 (opens the mouth)",
            "no positioning aid",
        ),
    )
}


def check_neutral(neutral: object) -> frozenset[str]:
    """Validate a collection of factor names; returns it as a frozenset.

    Raises:
        ValueError: a name that is not a key of :data:`FACTORS`.
    """
    if neutral is None:
        return frozenset()
    if isinstance(neutral, str):
        neutral = (neutral,)
    names = frozenset(str(n) for n in neutral)  # type: ignore[attr-defined]
    unknown = sorted(names - set(FACTORS))
    if unknown:
        raise ValueError(f"unknown variation factor(s) {unknown}; valid: {list(FACTORS)}")
    return names
