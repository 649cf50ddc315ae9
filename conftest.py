"""pytest's root: the app, database and client fixtures (tests/app_fixtures.py) serve every test,
those in tests/ and those kept beside their source (webhooks/<source>/tests/)."""

pytest_plugins = ["tests.app_fixtures"]
