"""fewmol.io."""
