"""The rule sweeps (R1–R17): each is `run(deps, now) -> int`, an indexed query for what is due at `now`
that has not fired yet, then escalation + notices in one transaction (store/repos/escalations.py)."""
