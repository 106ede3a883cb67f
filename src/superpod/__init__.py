"""superpod: what does this accelerator system really deliver?

Models an accelerator system (chip -> supernode -> SuperCluster) as one logical machine and
predicts what LLM training and inference get out of it. The library API is ``superpod.api``;
the ``superpod`` command is a thin layer over it.
"""

from superpod.errors import Infeasible, SpecError

__all__ = ["Infeasible", "SpecError", "__version__"]
__version__ = "0.1.0"
