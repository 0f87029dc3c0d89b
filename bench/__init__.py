"""The benchmark harness behind ``make bench``: development tooling, not part of the installed package."""
