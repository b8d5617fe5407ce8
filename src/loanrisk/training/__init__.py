"""Training, evaluation and fairness; jobs that publish to the model registry."""
