"""The settings of a fine-tuning run and their checks (light: the CLI validates flags with it
before Lightning is loaded)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fewmol.errors import InvalidInputError
from fewmol.finetune.applicability import DEFAULT_QUANTILE
from fewmol.finetune.baseline import BASELINES
from fewmol.finetune.calibration import CLASSIFICATION_METHODS
from fewmol.training import check_precision


@dataclass
class FinetuneConfig:
    """Every setting of a fine-tuning run (saved in config.json under ``training``)."""

    epochs: int = 100
    batch_size: int = 32
    lr: float = 1e-3
    encoder_lr: float | None = None
    weight_decay: float = 0.0
    dropout: float = 0.5
    num_layers: int = 5
    dim: int = 300
    jk: str = "last"
    pooling: str = "mean"
    head: str = "linear"
    featurizer: str = "hu2019"
    seed: int = 0
    init: str | None = None
    select_metric: str | None = None  # default: roc_auc (classification) / rmse (regression)
    eval_batch_size: int = 256
    workers: int = 1  # featurisation processes
    accelerator: str = "auto"
    devices: str = "auto"
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str = "32-true"  # Lightning precision: 32-true | bf16-mixed | 16-mixed
    progress: bool = True
    freeze_encoder: bool = False  # keep the --init encoder fixed (eval mode, no updates)
    unfreeze_after: int | None = None  # ... for this many epochs, then train it
    mc_dropout: int = 0  # MC-dropout passes at predict time (0: deterministic)
    coverage: float = 0.9  # conformal interval target (regression)
    calibration: str = "temperature"  # temperature | isotonic (classification)
    ad_quantile: float = DEFAULT_QUANTILE  # applicability thresholds keep this much of valid
    baseline: str = "none"  # none | rf: random forest on the same split, in metrics.json
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        """Raise InvalidInputError for settings that contradict each other (CLI exit 2)."""
        if self.encoder_lr is not None and self.encoder_lr < 0:
            raise InvalidInputError(f"--encoder-lr must be >= 0, got {self.encoder_lr}")
        if (self.freeze_encoder or self.unfreeze_after is not None) and not self.init:
            raise InvalidInputError(
                "--freeze-encoder and --unfreeze-after need a pre-trained encoder (--init DIR); "
                "a frozen random encoder would never learn"
            )
        if self.unfreeze_after is not None and not 1 <= self.unfreeze_after < self.epochs:
            raise InvalidInputError(
                f"--unfreeze-after must be between 1 and --epochs - 1 ({self.epochs - 1}), got "
                f"{self.unfreeze_after}; use --freeze-encoder to keep it frozen throughout"
            )
        if (self.freeze_encoder or self.unfreeze_after is not None) and "ddp" in self.strategy:
            raise InvalidInputError(
                "--freeze-encoder / --unfreeze-after do not work with DDP strategies (DDP fixes "
                "the trainable parameters when it starts); train on one device"
            )
        check_precision(self.precision)
        if self.mc_dropout < 0:
            raise InvalidInputError(f"--mc-dropout must be >= 0, got {self.mc_dropout}")
        if self.mc_dropout and self.dropout <= 0:
            raise InvalidInputError("--mc-dropout needs --dropout > 0 (it samples dropout masks)")
        if self.mc_dropout == 1:
            raise InvalidInputError("--mc-dropout needs at least 2 passes to estimate a spread")
        if not 0.0 < self.coverage < 1.0:
            raise InvalidInputError(
                f"--coverage must be a fraction between 0 and 1 (e.g. 0.9), got {self.coverage}"
            )
        if self.calibration not in CLASSIFICATION_METHODS:
            raise InvalidInputError(
                f"--calibration must be one of {', '.join(CLASSIFICATION_METHODS)}, "
                f"got {self.calibration!r}"
            )
        if self.baseline not in BASELINES:
            raise InvalidInputError(
                f"--baseline must be one of {', '.join(BASELINES)}, got {self.baseline!r}"
            )

    def metric(self, task_type: str) -> str:
        """Validation metric used to pick the best epoch."""
        return self.select_metric or ("roc_auc" if task_type == "classification" else "rmse")
