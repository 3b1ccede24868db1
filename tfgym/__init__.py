"""tfgym: learning transfer functions for medical volume rendering from human preferences.

``import tfgym`` registers ``TransferFunction-v0`` with Gymnasium and imports nothing heavy;
``gym.make("tfgym:TransferFunction-v0")`` works from any script without a prior import.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from gymnasium.envs.registration import register, registry

__all__ = ["__version__"]

try:
    __version__ = version("tfgym")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.5.0"

if "TransferFunction-v0" not in registry:
    register(
        id="TransferFunction-v0",
        entry_point="tfgym.env:TransferFunctionEnv",
        vector_entry_point="tfgym.vector:make_vector_env",
    )
