"""fewmol.chem.motifs: RDKit functional-group presence labels (GROVER's motif task)."""

from __future__ import annotations

import numpy as np

from fewmol.chem.motifs import FUNCTIONAL_GROUPS, motif_labels, motif_source

# GROVER's / GraphMVP's RDKIT_PROPS, in their order
GROVER_PROPS = """fr_Al_COO fr_Al_OH fr_Al_OH_noTert fr_ArN fr_Ar_COO fr_Ar_N fr_Ar_NH fr_Ar_OH
fr_COO fr_COO2 fr_C_O fr_C_O_noCOO fr_C_S fr_HOCCN fr_Imine fr_NH0 fr_NH1 fr_NH2 fr_N_O
fr_Ndealkylation1 fr_Ndealkylation2 fr_Nhpyrrole fr_SH fr_aldehyde fr_alkyl_carbamate
fr_alkyl_halide fr_allylic_oxid fr_amide fr_amidine fr_aniline fr_aryl_methyl fr_azide fr_azo
fr_barbitur fr_benzene fr_benzodiazepine fr_bicyclic fr_diazo fr_dihydropyridine fr_epoxide
fr_ester fr_ether fr_furan fr_guanido fr_halogen fr_hdrzine fr_hdrzone fr_imidazole fr_imide
fr_isocyan fr_isothiocyan fr_ketone fr_ketone_Topliss fr_lactam fr_lactone fr_methoxy
fr_morpholine fr_nitrile fr_nitro fr_nitro_arom fr_nitro_arom_nonortho fr_nitroso fr_oxazole
fr_oxime fr_para_hydroxylation fr_phenol fr_phenol_noOrthoHbond fr_phos_acid fr_phos_ester
fr_piperdine fr_piperzine fr_priamide fr_prisulfonamd fr_pyridine fr_quatN fr_sulfide
fr_sulfonamd fr_sulfone fr_term_acetylene fr_tetrazole fr_thiazole fr_thiocyan fr_thiophene
fr_unbrch_alkane fr_urea""".split()


def test_the_85_groups_in_grovers_order() -> None:
    assert FUNCTIONAL_GROUPS == tuple(GROVER_PROPS) and len(FUNCTIONAL_GROUPS) == 85
    assert motif_source().startswith("rdkit-") and "fr85" in motif_source()


def test_labels_mark_the_groups_present() -> None:
    smiles = ["O=C(O)c1ccccc1", "CCOC(C)=O", "CC#N", "c1ccncc1", "C"]
    y = motif_labels(smiles)
    assert y.shape == (5, 85) and y.dtype == np.uint8 and set(np.unique(y)) <= {0, 1}
    col = {name: i for i, name in enumerate(FUNCTIONAL_GROUPS)}
    assert y[0, col["fr_benzene"]] and y[0, col["fr_Ar_COO"]] and y[0, col["fr_COO"]]
    assert not y[0, col["fr_ester"]] and not y[0, col["fr_pyridine"]]
    assert y[1, col["fr_ester"]] and not y[1, col["fr_benzene"]]
    assert y[2, col["fr_nitrile"]] and y[3, col["fr_pyridine"]]
    assert y[4].sum() == 0  # methane has no functional group
