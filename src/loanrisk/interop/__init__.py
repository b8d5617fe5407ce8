"""loanrisk in other tools' formats: an MLflow model of a version, and training runs logged to
an MLflow tracking server (docs/mlflow.md). Needs the mlflow extra; nothing else imports it."""
