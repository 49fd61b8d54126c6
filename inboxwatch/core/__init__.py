"""The pure core: parse, classify, decide, render. No IO and no clock: ``now`` is an argument.

Everything that can be wrong about a lead is decided here and tested in milliseconds.
"""
