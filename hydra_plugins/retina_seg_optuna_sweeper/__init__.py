"""retina-seg's Optuna search sweeper plugin (Hydra only loads plugins from the hydra_plugins namespace)."""
