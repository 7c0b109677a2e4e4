"""fewmol.models."""
