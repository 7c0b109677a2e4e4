"""fewmol.multitask."""
