"""harness: scheduled drift detection and phone-flow regression testing for LLM phone services."""

__version__ = "0.1.0"
__all__ = ["__version__"]
