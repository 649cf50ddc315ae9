"""The QuickBooks fake of the provider tests, behind the mocked wire."""

from tests.providers.conftest import fake, rsps  # noqa: F401 - fixtures
