"""The settings of a pre-training run and their checks (light: the CLI validates flags with it
before Lightning is loaded)."""

from __future__ import annotations

from dataclasses import dataclass

from fewmol.chem.featurize import get_featurizer
from fewmol.errors import InvalidInputError
from fewmol.pretrain.data import CONF_SAMPLING, PRETRAIN_METHODS
from fewmol.pretrain.losses import CONTRASTIVE, GENERATIVE
from fewmol.pretrain.masking import MASK_MODES
from fewmol.pretrain.methods import METHODS
from fewmol.training import PRECISIONS

#: the 2D method each GraphMVP variant adds (GraphMVP-G: AttrMask, GraphMVP-C: ContextPred)
METHOD_2D = {"graphmvp-g": "attrmask", "graphmvp-c": "contextpred"}


@dataclass
class PretrainConfig:
    """Every setting of a pre-training run (saved in config.json under ``pretraining``)."""

    method: str = "graphmvp"
    epochs: int = 100
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0
    featurizer: str = "hu2019"
    num_layers: int = 5
    dim: int = 300
    jk: str = "last"
    dropout: float = 0.0  # GraphMVP pre-trains without dropout (its scripts' dropout_ratio 0)
    # GraphMVP: L = alpha1 L_C + alpha2 L_G (+ alpha3 L_2D for -G / -C)
    alpha1: float = 1.0
    alpha2: float = 1.0
    alpha3: float = 1.0
    beta: float = 1.0
    contrastive: str = "ebm_nce"
    temperature: float = 0.1
    generative: str = "vrr"
    mask_ratio: float = 0.15
    mask_mode: str = "atoms"
    conf_sampling: str = "cycle"
    num_confs: int = 5
    # SchNet: DESIGN §5 sizes; 51 Gaussians as GraphMVP; output width = the GIN's (critic)
    schnet_hidden: int = 128
    schnet_filters: int = 128
    schnet_interactions: int = 6
    schnet_gaussians: int = 51
    cutoff: float = 10.0
    max_neighbors: int = 32
    schnet_lr_scale: float = 0.1
    # 2D methods (alone, or inside GraphMVP-G / -C)
    attrmask_ratio: float = 0.15
    contextpred_logit_scale: float = 1.0  # 1 as pretrain-gnns; 1/sqrt(dim) learns faster early
    aug_strength: float = 0.2  # GraphCL / JOAO: share of atoms / bonds an augmentation changes
    joao_gamma: float = 0.1  # JOAO: pull of the augmentation distribution toward uniform
    max_molecules: int | None = 50_000
    workers: int = 1
    accelerator: str = "auto"
    devices: str = "auto"
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str = "32-true"  # Lightning precision: 32-true | bf16-mixed | 16-mixed
    progress: bool = True
    # seconds between mid-epoch checkpoints (0: at epoch ends only); a stop loses at most this
    checkpoint_every_s: float = 300.0

    def validate(self) -> None:
        """Raise InvalidInputError for a setting that cannot work."""

        def one_of(flag: str, value: str, allowed: tuple[str, ...]) -> tuple[bool, str]:
            return value in allowed, f"{flag} must be one of {', '.join(allowed)}, got {value!r}"

        checks = [
            one_of("--method", self.method, PRETRAIN_METHODS),
            one_of("--contrastive", self.contrastive, CONTRASTIVE),
            one_of("--generative", self.generative, GENERATIVE),
            one_of("--mask-mode", self.mask_mode, MASK_MODES),
            one_of("--conf-sampling", self.conf_sampling, CONF_SAMPLING),
            one_of("--precision", self.precision, PRECISIONS),
            (0.0 <= self.mask_ratio < 1, f"--mask-ratio must be in [0, 1), not {self.mask_ratio}"),
            (0.0 <= self.attrmask_ratio <= 1.0, "--attrmask-ratio must be in [0, 1]"),
            (0.0 <= self.aug_strength < 1.0, "--aug-strength must be in [0, 1)"),
            (self.contextpred_logit_scale > 0, "--contextpred-logit-scale must be > 0"),
            (self.joao_gamma >= 0, "--joao-gamma must be >= 0"),
            (min(self.alpha1, self.alpha2, self.alpha3, self.beta) >= 0, "weights must be >= 0"),
            (self.temperature > 0, "--temperature must be > 0"),
            (self.epochs >= 1, "--epochs must be >= 1"),
            (self.checkpoint_every_s >= 0, "--checkpoint-every must be >= 0 seconds"),
            (self.batch_size >= 2, "--batch-size must be >= 2 (EBM-NCE draws in-batch negatives)"),
        ]
        for ok, message in checks:
            if not ok:
                raise InvalidInputError(message)
        get_featurizer(self.featurizer)

    @property
    def method_2d(self) -> str | None:
        """Name of the 2D method trained (alone or beside GraphMVP), if any."""
        return self.method if self.method in METHODS else METHOD_2D.get(self.method)
