"""The training engine: one Lightning loop for every method, model directories, multi-seed runs."""
