"""A model's networks swapped for wrapped versions (compiled, DDP) for the length of a step.

Methods call ``ctx.model.generator`` / ``ctx.model.critic``; swapping the attributes, rather
than handing methods the wrappers, keeps every method unaware of compile and DDP, and puts the
plain networks back before checkpoints, EMA updates and sampling read them.
"""

from __future__ import annotations

from torch import nn


class ModuleSwap:
    """``with swap:`` each named submodule of ``model`` (a dotted path allowed:
    ``generator.unet``) is its replacement; on exit the plain modules are back. No
    replacements: a swap that changes nothing."""

    def __init__(self, model: nn.Module, replacements: dict[str, nn.Module]) -> None:
        self.model = model
        self.plain = {n: model.get_submodule(n) for n in replacements}
        self.replacements = replacements

    def _put(self, name: str, module: nn.Module) -> None:
        parent, _, leaf = name.rpartition(".")
        setattr(self.model.get_submodule(parent) if parent else self.model, leaf, module)

    def __enter__(self) -> ModuleSwap:
        for name, module in self.replacements.items():
            self._put(name, module)
        return self

    def __exit__(self, *exc) -> None:
        for name, module in self.plain.items():
            self._put(name, module)
