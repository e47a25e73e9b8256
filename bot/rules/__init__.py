"""Pure business rules: no I/O, no clock of their own; callers pass what they need."""
