"""Drugs and regimens: what a drug does (effect channels, pharmacokinetics) kept apart from
when it is given (the regimen); :mod:`simulator.treatment.course` joins the two per step."""
