"""Everything that drives emitted Verilog: the simulators and cached builds
(:mod:`.toolchain`), the payload packer (:mod:`.packing`), testbench DUT ports from the
manifest (:mod:`.ports`), the file-driven runners behind ``leopard-rtl simulate``
(:mod:`.frontend`, :mod:`.backend`, :mod:`.core`) and the cocotb modules
(``cocotb_*``, run by :func:`.cocotb_runner.run_cocotb`)."""
