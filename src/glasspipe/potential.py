"""The Kob-Andersen 80:20 binary Lennard-Jones mixture, defined once for every engine and analysis.

V_ab(r) = 4 eps_ab [(sigma_ab / r)^12 - (sigma_ab / r)^6] for r < r_cut_ab = 2.5 sigma_ab
(W. Kob and H. C. Andersen, Phys. Rev. E 51, 4626 (1995)). All masses are 1. Units: sigma_AA, eps_AA.

Cutoff modes (a config setting, recorded in every output's metadata):
- ``shift``: V(r) - V(r_cut) inside the cutoff, so the energy is continuous; forces unchanged.
- ``truncate``: plain cut; energies differ from ``shift`` by a constant per pair inside the cutoff.
- ``xplor``: HOOMD-blue's smoothing, V(r) S(r) with S = 1 below r_on and
  S(r) = (r_c^2 - r^2)^2 (r_c^2 + 2 r^2 - 3 r_on^2) / (r_c^2 - r_on^2)^3 from r_on to r_c, so energy and
  force go to zero continuously; r_on = xplor_r_on_fraction * r_cut for each pair.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

TYPE_NAMES = ("A", "B")
CUTOFF_MODES = ("shift", "truncate", "xplor")


@dataclass(frozen=True)
class KobAndersen:
    """Pair parameters of the KA mixture, indexed by type id (0 = A, 1 = B)."""

    epsilon: np.ndarray = field(default_factory=lambda: np.array([[1.0, 1.5], [1.5, 0.5]]))
    sigma: np.ndarray = field(default_factory=lambda: np.array([[1.0, 0.8], [0.8, 0.88]]))
    cutoff_factor: float = 2.5
    cutoff_mode: str = "shift"
    xplor_r_on_fraction: float = 0.8
    mass: float = 1.0
    type_names: tuple[str, ...] = TYPE_NAMES

    def __post_init__(self):
        if self.cutoff_mode not in CUTOFF_MODES:
            raise ValueError(f"cutoff_mode {self.cutoff_mode!r} is not one of {CUTOFF_MODES}")

    @property
    def r_cut(self) -> np.ndarray:
        """Per-pair cutoff radii r_cut_ab = 2.5 sigma_ab (sigma_AA): AA 2.5, AB 2.0, BB 2.2."""
        return self.cutoff_factor * self.sigma

    @property
    def r_on(self) -> np.ndarray:
        """Per-pair start of the xplor smoothing (sigma_AA)."""
        return self.xplor_r_on_fraction * self.r_cut

    def _switch(self, r, type_i, type_j):
        """xplor switching function S(r) and -S'(r) / r (1 and 0 below r_on)."""
        rc2 = self.r_cut[type_i, type_j] ** 2
        ron2 = self.r_on[type_i, type_j] ** 2
        r2 = r * r
        denominator = (rc2 - ron2) ** 3
        inside = r2 > ron2
        switch = np.where(inside, (rc2 - r2) ** 2 * (rc2 + 2 * r2 - 3 * ron2) / denominator, 1.0)
        minus_derivative_over_r = np.where(inside, 12.0 * (rc2 - r2) * (r2 - ron2) / denominator, 0.0)
        return switch, minus_derivative_over_r

    @property
    def r_cut_max(self) -> float:
        return float(self.r_cut.max())

    def pairs(self):
        """Yield (a, b, epsilon, sigma, r_cut) for each unordered type pair a <= b."""
        for a in range(2):
            for b in range(a, 2):
                yield a, b, float(self.epsilon[a, b]), float(self.sigma[a, b]), float(self.r_cut[a, b])

    def pair_energy(self, r: np.ndarray, type_i: np.ndarray, type_j: np.ndarray) -> np.ndarray:
        """Pair energies (eps_AA) at distances r for type pairs (type_i, type_j); zero beyond the cutoff."""
        eps = self.epsilon[type_i, type_j]
        sr6 = (self.sigma[type_i, type_j] / r) ** 6
        energy = 4.0 * eps * (sr6 * sr6 - sr6)
        rc = self.r_cut[type_i, type_j]
        if self.cutoff_mode == "xplor":
            energy = energy * self._switch(r, type_i, type_j)[0]
        if self.cutoff_mode == "shift":
            src6 = (self.sigma[type_i, type_j] / rc) ** 6
            energy = energy - 4.0 * eps * (src6 * src6 - src6)
        return np.where(r < rc, energy, 0.0)

    def pair_force_over_r(self, r: np.ndarray, type_i: np.ndarray, type_j: np.ndarray) -> np.ndarray:
        """-dV/dr / r (eps_AA / sigma_AA^2): multiply by the pair vector to get the force."""
        eps = self.epsilon[type_i, type_j]
        sr6 = (self.sigma[type_i, type_j] / r) ** 6
        f_over_r = 24.0 * eps * (2.0 * sr6 * sr6 - sr6) / (r * r)
        if self.cutoff_mode == "xplor":
            # -d(V S)/dr / r = S (-V'/r) + V (-S'/r)
            switch, minus_switch_derivative_over_r = self._switch(r, type_i, type_j)
            f_over_r = switch * f_over_r + 4.0 * eps * (sr6 * sr6 - sr6) * minus_switch_derivative_over_r
        return np.where(r < self.r_cut[type_i, type_j], f_over_r, 0.0)

    def lepton_expression(self, a: int, b: int) -> str:
        """The pair energy of types (a, b) as a Lepton expression in r (LAMMPS pair_style lepton), xplor mode."""
        eps, sig = float(self.epsilon[a, b]), float(self.sigma[a, b])
        rc2, ron2 = float(self.r_cut[a, b]) ** 2, float(self.r_on[a, b]) ** 2
        switch = f"(({rc2!r}-r^2)^2*({rc2!r}+2*r^2-3*{ron2!r})/({rc2!r}-{ron2!r})^3)"
        return f"4*{eps!r}*(({sig!r}/r)^12-({sig!r}/r)^6)*select(step(r^2-{ron2!r}),{switch},1)"

    def metadata(self) -> dict:
        """The potential as plain data, written into every output's metadata."""
        return {
            "model": "kob_andersen",
            "type_names": list(self.type_names),
            "epsilon": self.epsilon.tolist(),
            "sigma": self.sigma.tolist(),
            "r_cut": self.r_cut.tolist(),
            "cutoff_mode": self.cutoff_mode,
            **({"xplor_r_on": self.r_on.tolist()} if self.cutoff_mode == "xplor" else {}),
            "mass": self.mass,
        }


def from_config(config: dict) -> KobAndersen:
    """The potential described by config['system']."""
    system = config["system"]
    return KobAndersen(cutoff_mode=system["cutoff_mode"], xplor_r_on_fraction=system["xplor_r_on_fraction"])
