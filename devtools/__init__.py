"""Development tools shared by the tests, the benchmarks and CI; not part of the installed package."""
