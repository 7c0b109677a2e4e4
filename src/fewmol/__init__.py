"""fewmol: molecular property prediction when labelled data is scarce."""

__version__ = "0.1.0"
