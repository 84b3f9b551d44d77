"""Training: the offline unlabeled query pool (`pool`) that the soft-prompt tokens learn from."""
