"""fewmol.finetune."""
