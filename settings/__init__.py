"""Django settings, split by purpose: base (shared), dev, test, prod.

Every value comes from the environment (12-factor, django-environ); see docs/configuration.md.
"""
