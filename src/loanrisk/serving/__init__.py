"""The serving core: what the service does for a request, whatever transport carried it.

Runtime state (:mod:`~loanrisk.serving.state`), scoring with one routing snapshot per request
(champion, canary, shadow: :mod:`~loanrisk.serving.scoring`), micro-batching
(:mod:`~loanrisk.serving.batching`), shadow scoring (:mod:`~loanrisk.serving.shadow`), the
prediction-log hand-off, metrics (:mod:`~loanrisk.serving.metrics`), API key checks
(:mod:`~loanrisk.serving.auth`) and the Open Inference Protocol's data plane
(:mod:`~loanrisk.serving.dataplane`). The transports above it (the FastAPI service, the
console, OIP over REST and gRPC) translate their requests and answers; nothing here imports
FastAPI, Starlette or gRPC (as MLServer's data plane sits under its REST and gRPC servers).
"""
