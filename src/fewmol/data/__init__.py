"""fewmol.data."""
