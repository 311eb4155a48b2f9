"""Test doubles and conformance suites for Archon plug-ins and stores."""
