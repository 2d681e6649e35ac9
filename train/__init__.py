"""Training emulation: every GEMM of a small training job through lowbit's golden models.

``train.data`` (digits, MNIST IDX), ``train.arith`` (quantizers, GEMM twins, update rules),
``train.recipes`` (the recipes, plain data), ``train.models`` (layers, loss, optimizer),
``train.loop`` (the training loop), ``train.report`` and ``train.cli`` (``lowbit train``).
``docs/training.md`` describes the recipes and the results.
"""
