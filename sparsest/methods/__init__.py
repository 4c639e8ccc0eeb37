"""One thin driver per command, each built on :mod:`sparsest.engine`; no driver imports another.

- :mod:`.dynst`: ``sparsest run`` (DynST sensor search, fine-tuning, evaluation, deployment);
- :mod:`.stprune`: ``sparsest train`` (one backbone trained with sample pruning, timed);
- :mod:`.dynapruner`: ``sparsest compress`` (Dyna-Pruner and its baselines) and its study.

Each package's ``config`` module holds the command's options and imports without torch.
"""
