"""fewmol.pretrain.methods."""
