"""Golden model (bit-exact numpy reference) and performance model of LeOPArd.

No Amaranth import anywhere in this package: it is the independent reference.
"""
