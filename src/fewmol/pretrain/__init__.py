"""fewmol.pretrain."""
