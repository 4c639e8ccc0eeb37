"""One thin driver per command, each built on :mod:`sparsest.engine`; no driver imports another.

- :mod:`.dynst`: ``sparsest run`` (DynST sensor search, fine-tuning, evaluation, deployment) and
  ``sparsest plan`` (the largest sensor sparsity within an error budget; the same phases);
- :mod:`.stprune`: ``sparsest train`` (one backbone trained with sample pruning, timed);
- :mod:`.dynapruner`: ``sparsest compress`` (Dyna-Pruner and its baselines) and its study.

Each package's ``config`` module (``plan``'s: ``dynst.plan_config``) holds the command's options and imports
without torch.
"""
