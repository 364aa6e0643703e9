"""The iframe page is served by the tenants router: reuse its harness (app + onOffice emulator)."""

from tests.tenants.conftest import harness, onoffice

__all__ = ["harness", "onoffice"]
