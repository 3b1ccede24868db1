"""``tfgym export-tf``: a transfer function in a viewer's format (:mod:`tfgym.export`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tfgym.cli.common import CliError, add_command

__all__ = ["FORMATS", "register"]

FORMATS = {
    "vtk": "a VTK .vti image of the 2D TF and a pyvista script that renders the scan with it "
    "(-o is a folder)",
    "2dt": "ImageVis3D's 2D TF (.2dt): the polygon exactly",
    "vp.json": "3D Slicer's volume property (.vp.json): the closest separable "
    "scalar x gradient opacity, its IoU with the TF stored and printed",
    "vp": "3D Slicer's legacy 9-line volume property (.vp), the same approximation",
}


def _export(args: argparse.Namespace) -> int:
    from tfgym.export import export_vtk, write_2dt, write_slicer
    from tfgym.oracle.reference import reference_action
    from tfgym.scene import load_scene
    from tfgym.transfer_function import TransferFunction

    tf = None if args.tf == "reference" else TransferFunction.load(args.tf)  # fail fast
    scene = load_scene(args.scene)
    if tf is None:
        tf = TransferFunction.from_action(reference_action(scene, "bone"))
    out = Path(args.out)
    if args.format == "vtk":
        if out.suffix:
            raise CliError(f"-o {out}: the vtk format writes a folder; give a folder name")
        done = export_vtk(tf, scene, out, scan_path=args.scan)
        print(f"wrote {done.vti} and {done.script}")
        print(f"render it: python {done.script}")
    elif args.format == "2dt":
        print(f"wrote {write_2dt(tf, out, ranges=scene.ranges)}")
    else:
        result = write_slicer(tf, out, scene.ranges, legacy=args.format == "vp")
        print(f"wrote {result.path}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``export-tf``."""
    p, command = add_command(
        subparsers,
        "export-tf",
        _export,
        help="write a transfer function for VTK/pyvista, ImageVis3D or 3D Slicer",
        description="Write a transfer function (a JSON file from `tfgym demo`, `tfgym "
        "render`, an agent; or 'reference', the hand-made bone TF) in a viewer's format, "
        "on the histogram axes of --scene. Formats: "
        + "; ".join(f"{k}: {v}" for k, v in FORMATS.items()),
    )
    p.add_argument("tf", help="transfer function JSON file, or 'reference'")
    p.add_argument("--format", required=True, choices=sorted(FORMATS), help="output format")
    p.add_argument("-o", "--out", required=True, help="output file (a folder for vtk)")
    p.add_argument(
        "--scene", default="headsq", help="scene or scan path whose histogram axes the TF uses"
    )
    p.add_argument(
        "--scan", default=None, help="vtk: the scan the script opens (default: the scene's file)"
    )
    command.options.update(out="-o")
