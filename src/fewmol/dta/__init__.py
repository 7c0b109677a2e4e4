"""Drug–target affinity: GIN drug encoder + DeepDTA protein CNN, trained on Davis / KIBA."""
