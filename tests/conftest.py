"""Settings every test shares.

Hypothesis: CI runs the suite on two CPUs with servers beside it, so drawing inputs can be
slow; the property tests check what code does with an input, never how fast one is drawn.
"""

from hypothesis import HealthCheck, settings

settings.register_profile("synchub", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("synchub")
