"""Exceptions that mean "the user gave us something we cannot use" (CLI: message + exit 2)."""


class FewmolError(Exception):
    """Base class for user-facing errors; the CLI prints the message and exits with code 2."""


class InvalidInputError(FewmolError, ValueError):
    """Input data (CSV, SMILES, labels, columns) cannot be used as given."""


class InvalidSmilesError(InvalidInputError):
    """A SMILES string that RDKit cannot parse."""

    def __init__(
        self, smiles: str, index: int | None = None, reason: str = "RDKit could not parse it"
    ):
        where = f" at row {index}" if index is not None else ""
        super().__init__(f"invalid SMILES{where}: {smiles!r} ({reason})")
        self.smiles = smiles
        self.index = index
        self.reason = reason


class ModelFileError(FewmolError):
    """A model directory or weight file that is missing, corrupted or not written by fewmol."""


class DatasetNotFoundError(FewmolError, KeyError):
    """A dataset name that is not in the registry, or whose file cannot be found or fetched."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else ""
