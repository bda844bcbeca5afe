"""Simulation runners: run a unit's emitted Verilog on a trace (see ``leopard-rtl simulate``)."""
