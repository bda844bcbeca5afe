# Standalone Yosys synthesis of a LeOPArd unit to a liberty (what leopard_rtl/flow/synth.py
# runs through pyosys 0.70). Usage (yosys >= 0.40):
#   yosys -c constraints/yosys/synth.tcl -- <verilog> <top> <seq.lib> <lib1> [<lib2> ...]
# Optional environment: LEOPARD_TIE_CELLS="TIEHI pin TIELO pin" (hilomap) and
# LEOPARD_BUFFER="BUF in out" (insbuf), e.g. "LOGIC1_X1 Z LOGIC0_X1 Z" and "BUF_X2 A Z" on
# nangate45 (synth.py finds both in the liberty), LEOPARD_CLOCK_PS=<period in ps> (ABC's
# delay target for buffering and sizing; default 1000).
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
# delay-driven mapping: the script of leopard_rtl.flow.synth.ABC_SCRIPT (see there)
set clock_ps 1000
if {[info exists ::env(LEOPARD_CLOCK_PS)]} { set clock_ps $::env(LEOPARD_CLOCK_PS) }
set abc_script "+strash;&get,-n;&fraig,-x;&put;scorr;dc2;dretime;strash;&get,-n;&if,-g;&synch2;&if,-g;&put;dch,-f;map;buffer,-p;upsize,{D};dnsize,{D};stime,-p"
abc -D $clock_ps -script $abc_script {*}$libargs
setundef -zero
opt_clean
stat {*}$libargs
flatten
opt_clean -purge
# one-bit nets: no concatenation on the left of an assign (OpenSTA reads none)
splitnets
opt_clean -purge
if {[info exists ::env(LEOPARD_TIE_CELLS)]} {
  lassign $::env(LEOPARD_TIE_CELLS) hi hipin lo lopin
  hilomap -singleton -hicell $hi $hipin -locell $lo $lopin
}
if {[info exists ::env(LEOPARD_BUFFER)]} {
  insbuf -buf {*}$::env(LEOPARD_BUFFER)
}
autoname
stat {*}$libargs
write_verilog -noattr -noexpr -nohex -nodec ${top}_netlist.v
