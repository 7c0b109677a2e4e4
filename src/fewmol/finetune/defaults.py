"""Defaults shared by the inference functions and their commands.

Nothing heavy is imported here: the CLI reads these to build its options without loading
Lightning (seconds) at start-up.
"""

#: molecules per inference batch (predict, embed, the end of a fine-tuning run)
BATCH_ROWS = 256
#: input rows per streamed chunk of predict / embed: a multiple of BATCH_ROWS
DEFAULT_CHUNK_ROWS = 10240
#: integration steps of `fewmol explain` (more: attributions sum closer to exact)
DEFAULT_STEPS = 32
