"""Multi-task strategies the engine applies: task sampling, loss weighting, gradient surgery, sharing kinds.

Each is a registry filled through plugin hooks (shopmtl's own entries come from
:mod:`shopmtl.core.mtl.builtin`); this room looks a configured name up and builds it.
"""
