"""Functional-group (motif) labels: RDKit's 85 ``fr_*`` fragment counts, as presence bits.

GROVER's motif task (and GraphMVP's G-Motif) predicts which of RDKit's ``Chem.Fragments``
functional groups a molecule contains: 85 SMARTS patterns (``fr_Al_COO`` ... ``fr_urea``,
from RDKit's ``FragmentDescriptors.csv``); the label is 1 where the count is above zero, as
GraphMVP's ``rdkit_functional_group_label_features_generator``. numpy and RDKit only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import rdkit
from rdkit import Chem
from rdkit.Chem import Fragments

from fewmol.chem.mol import mol_from_smiles

#: GROVER's / GraphMVP's ``RDKIT_PROPS``: every ``fr_*`` function of ``rdkit.Chem.Fragments``
FUNCTIONAL_GROUPS: tuple[str, ...] = tuple(sorted(n for n in dir(Fragments) if n.startswith("fr_")))
MOTIF_VERSION = 1


def motif_source() -> str:
    """What the labels depend on (the patterns ship with RDKit), for cache keys and configs."""
    return f"rdkit-{rdkit.__version__}-fr{len(FUNCTIONAL_GROUPS)}-v{MOTIF_VERSION}"


def functional_groups(mol: Chem.Mol) -> np.ndarray:
    """Presence (uint8 0/1) of each of :data:`FUNCTIONAL_GROUPS` in ``mol``."""
    return np.array(
        [getattr(Fragments, name)(mol) > 0 for name in FUNCTIONAL_GROUPS], dtype=np.uint8
    )


def motif_labels(smiles: Sequence[str]) -> np.ndarray:
    """(n, 85) uint8 functional-group presence of canonical SMILES (one RDKit parse each)."""
    out = np.zeros((len(smiles), len(FUNCTIONAL_GROUPS)), dtype=np.uint8)
    for i, s in enumerate(smiles):
        out[i] = functional_groups(mol_from_smiles(s))
    return out
