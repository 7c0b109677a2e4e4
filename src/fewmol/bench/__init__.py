"""fewmol.bench."""
