"""fewmol.chem."""
