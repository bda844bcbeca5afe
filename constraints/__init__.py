"""Flow data shipped with the package: the SDC template, the platform table, QoR gates."""
