# Standalone Yosys synthesis of a LeOPArd unit to a liberty (what leopard_rtl/flow/synth.py
# runs through pyosys 0.70). Usage (yosys >= 0.40):
#   yosys -c constraints/yosys/synth.tcl -- <verilog> <top> <seq.lib> <lib1> [<lib2> ...]
# Debian's yosys 0.23 is too old for Amaranth 0.5 output; use `pip install pyosys==0.70`.
yosys -import
set argv [lrange $argv [expr {[lsearch $argv --] + 1}] end]
lassign $argv verilog top seq
set libs [lrange $argv 3 end]
set libargs {}
foreach l $libs { lappend libargs -liberty $l }
read_verilog -sv $verilog
hierarchy -check -top $top
synth -top $top
dfflibmap -liberty $seq
abc {*}$libargs
setundef -zero
opt_clean
stat {*}$libargs
flatten
opt_clean -purge
stat {*}$libargs
write_verilog -noattr -noexpr -nohex -nodec ${top}_netlist.v
