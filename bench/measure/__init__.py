"""The measurements, one a module, each with one entry: `measure(bench) -> Section`.

They run in the order of `bench.run.ORDER`, which numbers them; a broken harness
raises HarnessError, a missed goal is only reported.
"""
