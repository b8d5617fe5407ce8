"""The HTTP service: a thin FastAPI front end over the library (``create_app(settings)``)."""

from loanrisk.service.app import create_app

__all__ = ["create_app"]
